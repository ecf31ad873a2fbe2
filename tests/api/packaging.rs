//! The packaging examples work as written: the Kubernetes example's config passes `portico check`, and
//! its probes, ports, mounts and grace period agree with that config. (The Dockerfile and the systemd
//! unit are checked by their own tools in scripts/check-packaging.sh.)

use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const MANIFEST: &str = include_str!("../../packaging/kubernetes/portico.yaml");

fn documents() -> Vec<Yaml> {
    YamlLoader::load_from_str(MANIFEST).expect("the manifest is YAML")
}

fn of_kind<'d>(documents: &'d [Yaml], kind: &str) -> &'d Yaml {
    documents
        .iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("the manifest has a {kind}"))
}

fn portico_yaml(documents: &[Yaml]) -> String {
    of_kind(documents, "ConfigMap")["data"]["portico.yaml"]
        .as_str()
        .expect("the ConfigMap carries portico.yaml")
        .to_owned()
}

fn port_of(addr: &str) -> i64 {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("`{addr}` has a port"))
}

fn container(documents: &[Yaml]) -> &Yaml {
    &of_kind(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn container_port(container: &Yaml, name: &str) -> i64 {
    container["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_i64())
        .unwrap_or_else(|| panic!("a container port named {name}"))
}

/// The files the config names under /etc/portico exist in the pod (in a mounted volume), and with
/// test certificates and keys in their place, `portico check` accepts the config.
#[test]
fn the_kubernetes_example_config_passes_portico_check() {
    let documents = documents();
    let config = portico_yaml(&documents);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();

    let mounts: Vec<String> = container(&documents)["volumeMounts"]
        .as_vec()
        .expect("volumeMounts")
        .iter()
        .map(|m| m["mountPath"].as_str().expect("mountPath").to_owned())
        .collect();
    let named: Vec<&str> = config
        .split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | ','))
        .filter(|word| word.starts_with("/etc/portico/"))
        .collect();
    assert!(!named.is_empty(), "the example config names its files");
    for file in &named {
        assert!(
            mounts.iter().any(|m| file.starts_with(&format!("{m}/"))),
            "{file} is named by the config but no volume is mounted there ({mounts:?})"
        );
    }

    let certified = rcgen::generate_simple_self_signed(vec!["portal.acme.example".to_owned()])
        .expect("certificate");
    let signing_key = rcgen::KeyPair::generate().expect("P-256 key");
    let write = |path: &str, contents: &str| {
        let path = root.join(path.trim_start_matches("/etc/portico/"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
    };
    write("/etc/portico/tls/tls.crt", &certified.cert.pem());
    write(
        "/etc/portico/tls/tls.key",
        &certified.signing_key.serialize_pem(),
    );
    write(
        "/etc/portico/signing-keys/assertion-key.pem",
        &signing_key.serialize_pem(),
    );
    write(
        "/etc/portico/sessions/session.key",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
    );
    write("/etc/portico/sessions/redis-password", "from-the-secret\n");
    let local = config.replace("/etc/portico/", &format!("{}/", root.display()));
    let file = root.join("portico.yaml");
    std::fs::write(&file, local).expect("write config");

    let output = check(&file);
    assert!(
        output.status.success(),
        "portico check refused the Kubernetes example:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn check(file: &Path) -> std::process::Output {
    Command::new(BIN)
        .arg("check")
        .arg(file)
        .env("ACME_OIDC_SECRET", "from-the-secret")
        .output()
        .expect("run portico check")
}

/// The probes reach the admin listener on the right paths, the ports the container declares are the
/// ones the config listens on, and the pod runs the way the image expects (non-root, read-only).
#[test]
fn the_kubernetes_example_probes_and_ports_agree_with_its_config() {
    let documents = documents();
    let config = YamlLoader::load_from_str(&portico_yaml(&documents)).expect("config is YAML");
    let server = &config[0]["server"];
    let container = container(&documents);

    let admin = port_of(server["admin_listen"].as_str().expect("admin_listen"));
    assert_eq!(container_port(container, "admin"), admin);
    assert_eq!(
        container_port(container, "https"),
        port_of(server["listen"].as_str().expect("listen"))
    );
    assert_eq!(
        container_port(container, "http-redirect"),
        port_of(server["redirect_listen"].as_str().expect("redirect_listen"))
    );
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(
            get["port"].as_str(),
            Some("admin"),
            "{probe} goes to the admin port"
        );
    }

    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    let pod = &of_kind(&documents, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));

    // SIGTERM comes after preStop; requests in flight then get server.shutdown_timeout.
    let shutdown = humantime::parse_duration(
        server["shutdown_timeout"]
            .as_str()
            .expect("shutdown_timeout"),
    )
    .expect("a duration")
    .as_secs();
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .expect("preStop pause");
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("grace");
    assert!(
        grace > i64::try_from(shutdown).expect("small") + pause,
        "terminationGracePeriodSeconds ({grace}) must exceed shutdown_timeout ({shutdown}s) + preStop ({pause}s)"
    );
}
