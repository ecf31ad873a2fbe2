//! The `portico` command: `serve` runs the portal, `check` validates config files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portico::config::{self, ConfigError, Loaded, Severity};
use portico::telemetry::{self, LogFormat};

/// mimalloc instead of glibc's malloc: a proxied request allocates and frees many small buffers (headers,
/// futures, `Bytes`), and glibc's allocator was about an eighth of portico's CPU per request in
/// `bench/run.sh`'s profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands memory that mimalloc has freed back to the OS within about 2 s, also when the process is
/// quiet. mimalloc purges freed pages 1 s after they are freed, but only from inside its own calls:
/// after a burst (10,000 clients leaving), a quiet portico kept what the last second had freed, 76 MiB
/// above its baseline, for as long as it stayed quiet. A thread of its own calls `mi_collect(false)`
/// once a second: it runs the purges that are due, and costs the request path nothing. (A 10 ms purge
/// delay did the same for RSS, but purges on the request path under load as well: bench/README.md,
/// "Memory".)
#[allow(unsafe_code)]
fn collect_freed_memory_periodically() {
    let spawned = std::thread::Builder::new()
        .name("portico-mem".to_owned())
        .spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                // SAFETY: `mi_collect` takes no pointers; it collects this thread's own heap and runs
                // the process's due purges under mimalloc's own locks, callable from any thread.
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no thread to return freed memory to the OS");
    }
}

/// The front door of an internal developer portal: Luigi shell, server-built navigation, role-checked proxy.
#[derive(Parser)]
#[command(name = "portico", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal. Without --config, runs the embedded demo (dev sign-in on 127.0.0.1:8080).
    Serve {
        /// The YAML config file.
        #[arg(long, short, env = "PORTICO_CONFIG")]
        config: Option<PathBuf>,
        /// Override `server.listen`, e.g. 127.0.0.1:8081.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Override `server.admin_listen`.
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
        /// Log line format.
        #[arg(long, value_enum, default_value = "text", env = "PORTICO_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Print a config: `--embedded` prints the demo config `serve` runs without --config, a start
    /// for your own.
    Config {
        /// The embedded demo config.
        #[arg(long, required = true)]
        embedded: bool,
    },
    /// Why a user sees what they see: every app and page of a tenant, visible or not, with the roles
    /// it needs and the groups that grant them; with --path, the rule that decides that path.
    Explain {
        #[command(flatten)]
        who: Who,
        /// A path to decide: `/apps/<id>/…` as the proxy sees it, or `/home/<id>/…` as the shell does.
        #[arg(long)]
        path: Option<String>,
        /// The method for --path.
        #[arg(long, default_value = "GET")]
        method: String,
        /// `text` for people, `json` for programs.
        #[arg(long, value_enum, default_value = "text")]
        format: ExplainFormat,
    },
    /// Probe every app and page view a user can open, through the real proxy path, and report what
    /// is wrong with each: its status, Luigi Client, root-absolute URLs, framing headers, cookies on
    /// `Path=/`; with the app's owner and the fix. Exits 1 when any finding is an error.
    Doctor {
        #[command(flatten)]
        who: Who,
        /// Only this app (repeatable); default: every app the user sees.
        #[arg(long = "app")]
        apps: Vec<String>,
        /// `text` for people (one line per finding), `json` for programs.
        #[arg(long, value_enum, default_value = "text")]
        format: ExplainFormat,
    },
    /// What a user with these groups would see: their Luigi navigation as text or as the JSON the
    /// shell gets; with --serve, the real portal of that tenant on a loopback address, signed in as
    /// such a user, with a "preview" banner.
    Preview {
        #[command(flatten)]
        who: Who,
        /// The language of the labels (`en`, `de`); a served preview follows the browser's.
        #[arg(long, default_value = "en")]
        lang: String,
        /// `text`: the navigation as a reviewer reads it; `json`: what `/shell/config.json` returns.
        #[arg(long, value_enum, default_value = "text")]
        format: ExplainFormat,
        /// Serve the real shell on this loopback address instead (e.g. 127.0.0.1:8090).
        #[arg(long)]
        serve: Option<SocketAddr>,
    },
    /// Revoke personal access tokens on a running portal, through its admin listener: one token (by
    /// its id, or the whole token text where it leaked), or every token of a user who left.
    RevokeToken {
        /// The portal's admin listener (`server.admin_listen`).
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: SocketAddr,
        /// The tenant the token belongs to.
        #[arg(long)]
        tenant: String,
        /// The token's id as its user's list shows it, or the token itself (`portico_pat_…`).
        #[arg(long, required_unless_present = "user", conflicts_with = "user")]
        token: Option<String>,
        /// Every token of this user (their subject at the IdP, or dev sign-in id).
        #[arg(long)]
        user: Option<String>,
    },
    /// Print the JSON Schema of the config file (or with --app, of one team's app file), for editors
    /// (yaml-language-server) and CI.
    Schema {
        /// The schema of an app file (`apps_from`) instead of the main config.
        #[arg(long)]
        app: bool,
    },
    /// Validate config files and report every problem with file:line:column; exits 1 on any error.
    /// A team's app file is checked as an app of its tenant. Needs none of the platform's secrets:
    /// an unset ${VAR} is a warning (--strict fails on it).
    Check {
        /// Config files to check: main configs, or teams' app files (`-`: standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        app_check: CheckArgs,
        /// Compare with this old config and report who gains and who loses which app, page or rule:
        /// its file, or a checkout of the old revision (a directory holding the same relative path).
        #[arg(long, value_name = "OLD")]
        diff_against: Option<PathBuf>,
        /// Output of --diff-against: `text`, `github` (annotations and $GITHUB_STEP_SUMMARY), `json`.
        #[arg(long, value_enum, default_value = "text", requires = "diff_against")]
        format: DiffFormat,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DiffFormat {
    Text,
    Github,
    Json,
}

/// Whom `explain`, `doctor` and `preview` speak of: a tenant of a config, and a user's groups.
#[derive(clap::Args)]
struct Who {
    /// The YAML config file (default: the embedded demo).
    #[arg(long, short, env = "PORTICO_CONFIG")]
    config: Option<PathBuf>,
    /// The tenant's id.
    #[arg(long)]
    tenant: String,
    /// Who it is for (shown in the report); with dev sign-in, a demo user's id also gives their
    /// groups.
    #[arg(long)]
    user: Option<String>,
    /// The user's IdP groups, comma-separated (`--groups acme-eng,acme-finops`).
    #[arg(long, value_delimiter = ',')]
    groups: Option<Vec<String>>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExplainFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            files,
            diff_against: Some(old),
            format,
            ..
        } => check_diff(&files, &old, format),
        Command::Check {
            files, app_check, ..
        } => check(&files, &app_check),
        Command::RevokeToken {
            admin,
            tenant,
            token,
            user,
        } => revoke_token(admin, &tenant, token.as_deref(), user.as_deref()),
        Command::Schema { app } => write_out(if app {
            config::APP_SCHEMA
        } else {
            config::SCHEMA
        }),
        Command::Explain {
            who:
                Who {
                    config,
                    tenant,
                    user,
                    groups,
                },
            path,
            method,
            format,
        } => explain(
            config.as_deref(),
            &tenant,
            user.as_deref(),
            groups,
            path.as_deref().map(|path| (method.as_str(), path)),
            format,
        ),
        Command::Doctor {
            who:
                Who {
                    config,
                    tenant,
                    user,
                    groups,
                },
            apps,
            format,
        } => doctor(config.as_deref(), tenant, user, groups, apps, format),
        Command::Preview {
            who:
                Who {
                    config,
                    tenant,
                    user,
                    groups,
                },
            lang,
            format,
            serve,
        } => {
            let (config, groups) =
                match config_for_user(config.as_deref(), &tenant, user.as_deref(), groups) {
                    Ok(resolved) => resolved,
                    Err(code) => return code,
                };
            let viewer = portico::preview::Viewer { user, groups };
            match serve {
                Some(listen) => serve_preview(config, &tenant, &viewer, listen),
                None => print_preview(&config, &tenant, &viewer, &lang, format),
            }
        }
        Command::Config { embedded: _ } => write_out(config::EMBEDDED_DEFAULT),
        Command::Serve {
            config,
            listen,
            admin_listen,
            log_format,
        } => {
            let _log_guard = telemetry::init(log_format);
            collect_freed_memory_periodically();
            // Worker 0's runtime; `App::run` starts one more single-threaded runtime per further
            // worker (`server.workers`), so no request hops between threads (see `app::Worker`).
            let Some(runtime) = runtime() else {
                return ExitCode::FAILURE;
            };
            runtime.block_on(serve(config, listen, admin_listen))
        }
    }
}

/// `portico check`'s options for app files, standard input and warnings.
#[derive(clap::Args)]
struct CheckArgs {
    /// The main config an app file is checked against [default: the nearest portico.yaml in this
    /// directory or above].
    #[arg(long, short, env = "PORTICO_CONFIG")]
    config: Option<PathBuf>,
    /// The tenant an app file is checked as [default: the one whose `apps_from` matches its path].
    #[arg(long)]
    tenant: Option<String>,
    /// Fail on warnings too (an unset ${VAR} is one).
    #[arg(long)]
    strict: bool,
    /// The path `-` (standard input) stands for: named in diagnostics, matched with `apps_from`,
    /// and its directory anchors relative paths.
    #[arg(long, value_name = "PATH")]
    stdin_name: Option<PathBuf>,
}

/// `portico check`: each file on its own, a main config or a team's app file (checked as its
/// tenant's, `config::check`), without the platform's secrets; exits 1 when any has an error, or
/// with --strict a warning.
fn check(files: &[PathBuf], args: &CheckArgs) -> ExitCode {
    let working_dir = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("error: cannot tell the working directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stdin = std::path::Path::new("-");
    if args.stdin_name.is_some() && !files.iter().any(|file| file == stdin) {
        eprintln!("error: --stdin-name names standard input, and no file is `-`");
        return ExitCode::FAILURE;
    }
    if files.iter().filter(|file| *file == stdin).count() > 1 {
        eprintln!("error: standard input (`-`) can be checked once");
        return ExitCode::FAILURE;
    }
    let options = config::CheckOptions {
        config: args.config.as_deref(),
        tenant: args.tenant.as_deref(),
        working_dir: &working_dir,
    };
    let mut failed = false;
    for file in files {
        let input = if file == stdin {
            match read_stdin() {
                Ok(text) => config::CheckInput {
                    name: args
                        .stdin_name
                        .as_ref()
                        .map_or_else(|| "<stdin>".to_owned(), |name| name.display().to_string()),
                    path: args.stdin_name.clone(),
                    text: Some(text),
                },
                Err(error) => {
                    eprintln!("error: cannot read standard input: {error}");
                    failed = true;
                    continue;
                }
            }
        } else {
            config::CheckInput {
                name: file.display().to_string(),
                path: Some(file.clone()),
                text: None,
            }
        };
        match config::check(&config::OsSource, &input, &options) {
            Ok(report) => {
                let passed = report.passed(args.strict);
                let mut lines: Vec<String> =
                    report.diagnostics.iter().map(ToString::to_string).collect();
                lines.extend(report.note());
                lines.push(report.summary(args.strict));
                // As before: a passing file's report on stdout, a failing one's on stderr.
                if passed {
                    println!("{}", lines.join("\n"));
                } else {
                    eprintln!("{}", lines.join("\n"));
                    failed = true;
                }
            }
            Err(error) => {
                eprintln!("error: {error}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Standard input as text, at most one byte more than the 1 MiB a config file may have (the
/// loader refuses more, and an endless pipe is not read to its end).
fn read_stdin() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take((1 << 20) + 1)
        .read_to_end(&mut bytes)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// `portico check NEW --diff-against OLD`: both configs load as `check` loads them (an error in
/// either exits 1 with its report); then `portico::config_diff`'s report. A diff is information, so
/// it exits 0.
fn check_diff(files: &[PathBuf], old: &std::path::Path, format: DiffFormat) -> ExitCode {
    use portico::config_diff;
    let [new] = files else {
        eprintln!("error: --diff-against compares one config file; give one");
        return ExitCode::FAILURE;
    };
    let old = match config_diff::old_config_path(new, old) {
        Ok(old) => old,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (new_side, old_side) = (config_diff::load(new), config_diff::load(&old));
    for (side, which) in [(&new_side, "new"), (&old_side, "old (--diff-against)")] {
        if let Err(error) = side {
            print_config_error(error);
            eprintln!("the {which} config does not load; nothing compared");
        }
    }
    let (Ok(new_side), Ok(old_side)) = (new_side, old_side) else {
        return ExitCode::FAILURE;
    };
    for warning in new_side.warnings() {
        eprintln!("{warning}");
    }
    let review = config_diff::diff(&old_side, &new_side);
    let written = match format {
        DiffFormat::Text => Ok(review.to_text()),
        DiffFormat::Json => review.to_json(),
        DiffFormat::Github => match std::env::var_os("GITHUB_STEP_SUMMARY") {
            Some(path) if !path.is_empty() => review
                .append_summary(std::path::Path::new(&path))
                .map(|()| review.to_github_annotations()),
            _ => Ok(format!(
                "{}\n{}",
                review.to_github_annotations(),
                review.to_markdown()
            )),
        },
    };
    match written {
        Ok(text) => write_out(&text),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `portico explain`: loads the config (refused whole if it has an error, like `serve`), finds the
/// tenant and the user's groups, and prints `portico::explain`'s report.
fn explain(
    file: Option<&std::path::Path>,
    tenant_id: &str,
    user: Option<&str>,
    groups: Option<Vec<String>>,
    path: Option<(&str, &str)>,
    format: ExplainFormat,
) -> ExitCode {
    let (config, groups) = match config_for_user(file, tenant_id, user, groups) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let Some(tenant) = config.tenant(tenant_id) else {
        return ExitCode::FAILURE;
    };
    let method = match path.map(|(method, _)| method.to_ascii_uppercase().parse::<http::Method>()) {
        Some(Err(_)) => {
            eprintln!(
                "error: `{}` is not an HTTP method",
                path.map_or("", |(m, _)| m)
            );
            return ExitCode::FAILURE;
        }
        Some(Ok(method)) => Some(method),
        None => None,
    };
    let path = method.as_ref().zip(path.map(|(_, path)| path));
    let explanation = portico::explain::explain(tenant, user, &groups, path);
    write_report(format, || explanation.to_text(), &explanation)
}

/// The config (refused whole if it has an error, like `serve`) and the groups of `user` on
/// `tenant_id`, for `explain` and `doctor`: `--groups` as given, else a dev sign-in user's groups.
/// Problems are printed; the `Err` is the exit code.
fn config_for_user(
    file: Option<&std::path::Path>,
    tenant_id: &str,
    user: Option<&str>,
    groups: Option<Vec<String>>,
) -> Result<(config::Config, Vec<String>), ExitCode> {
    let loaded = match file {
        Some(file) => config::load_file(file),
        None => config::load_embedded(),
    };
    let config = match loaded {
        Ok(Loaded { config, .. }) => config,
        Err(error) => {
            print_config_error(&error);
            return Err(ExitCode::FAILURE);
        }
    };
    let Some(tenant) = config.tenant(tenant_id) else {
        let ids: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
        eprintln!(
            "error: there is no tenant `{tenant_id}`\n    hint: the tenants: {}",
            ids.join(", ")
        );
        return Err(ExitCode::FAILURE);
    };
    let groups = match (groups, user, &tenant.sign_in) {
        (Some(groups), _, _) => groups,
        (None, Some(user), config::SignIn::Dev { users }) if users.iter().any(|u| u.id == user) => {
            users
                .iter()
                .find(|u| u.id == user)
                .map(|u| u.groups.clone())
                .unwrap_or_default()
        }
        (None, _, _) => {
            eprintln!(
                "error: say which groups the user has\n    hint: --groups acme-eng,acme-finops (as the IdP's groups claim lists them); with dev sign-in, --user <demo user id> reads them from config"
            );
            return Err(ExitCode::FAILURE);
        }
    };
    Ok((config, groups))
}

/// `portico doctor`: probes as `user` through an in-process portal (`portico::doctor`) and prints
/// its findings; exits 1 when one is an error.
fn doctor(
    file: Option<&std::path::Path>,
    tenant: String,
    user: Option<String>,
    groups: Option<Vec<String>>,
    apps: Vec<String>,
    format: ExplainFormat,
) -> ExitCode {
    let (config, groups) = match config_for_user(file, &tenant, user.as_deref(), groups) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let subject = portico::doctor::Subject {
        tenant,
        user,
        groups,
        apps,
    };
    let report = match runtime.block_on(portico::doctor::run(config, &subject)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let written = write_report(format, || report.to_text(), &report);
    if report.failed() {
        ExitCode::FAILURE
    } else {
        written
    }
}

/// `portico preview` without `--serve`: the navigation or the shell's config document.
fn print_preview(
    config: &config::Config,
    tenant: &str,
    viewer: &portico::preview::Viewer,
    lang: &str,
    format: ExplainFormat,
) -> ExitCode {
    let document = match portico::preview::shell_config(config, tenant, viewer, lang) {
        Ok(document) => document,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    write_report(
        format,
        || portico::preview::outline(tenant, viewer, &document),
        &document,
    )
}

/// `portico preview --serve`: the tenant's real portal on a loopback address, for one stand-in user.
fn serve_preview(
    config: config::Config,
    tenant: &str,
    viewer: &portico::preview::Viewer,
    listen: SocketAddr,
) -> ExitCode {
    let config = match portico::preview::serving_config(config, tenant, viewer, listen) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _log_guard = telemetry::init(LogFormat::Text);
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        let app = match portico::app::App::build(config).await {
            Ok(app) => app,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "preview of tenant {tenant} for {} on http://{}/ (sign in as the one user offered); Ctrl-C ends it",
            viewer.groups.join(", "),
            app.local_addr()
        );
        match app.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// A command's report: its text for people, or its JSON for programs.
fn write_report<T: serde::Serialize>(
    format: ExplainFormat,
    text: impl FnOnce() -> String,
    json: &T,
) -> ExitCode {
    match format {
        ExplainFormat::Text => write_out(&text()),
        ExplainFormat::Json => match serde_json::to_string_pretty(json) {
            Ok(json) => write_out(&format!("{json}\n")),
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

/// A single-threaded async runtime for a command, or `None` after saying why there is none.
/// `portico revoke-token`: `POST /tokens/revoke` on the admin listener, and what it answered.
fn revoke_token(
    admin: SocketAddr,
    tenant: &str,
    token: Option<&str>,
    user: Option<&str>,
) -> ExitCode {
    // A whole token (found in a log, a paste) names its id after the prefix; only the id is sent.
    let token = token.map(|token| {
        token
            .strip_prefix(portico::auth::personal::PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .map_or(token, |(id, _)| id)
    });
    let body = match (token, user) {
        (Some(token), _) => serde_json::json!({ "tenant": tenant, "token": token }),
        (None, Some(user)) => serde_json::json!({ "tenant": tenant, "user": user }),
        (None, None) => unreachable!("clap requires --token or --user"),
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let url = format!("http://{admin}/tokens/revoke");
    let answer = runtime.block_on(async {
        use http_body_util::{BodyExt, Full};
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<bytes::Bytes>>();
        let request = axum::http::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body.to_string())))
            .map_err(|error| error.to_string())?;
        let call = async {
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|error| error.to_string())?
                .to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            Ok::<_, String>((status, body))
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .map_err(|_| "no answer within 10 s".to_owned())?
    });
    match answer {
        Ok((status, body)) if status.is_success() => {
            let count = body["revoked"].as_u64().unwrap_or(0);
            let noun = if count == 1 { "token" } else { "tokens" };
            println!("revoked {count} {noun} of tenant {tenant}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            let message = body["message"].as_str().unwrap_or("no explanation");
            eprintln!("error: the portal refused ({status}): {message}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!(
                "error: cannot reach the admin listener at {url}: {error} (is `server.admin_listen` {admin}?)"
            );
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            None
        }
    }
}

/// Writes a command's output; a reader that went away (`portico schema | head`) ends it quietly
/// instead of the panic `print!` would give.
fn write_out(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: cannot write the output: {error}");
            ExitCode::FAILURE
        }
    }
}

fn print_config_error(error: &ConfigError) {
    for diagnostic in &error.diagnostics {
        eprintln!("{diagnostic}");
    }
    let count = error
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    eprintln!("{count} error(s) found");
}

async fn serve(
    path: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
) -> ExitCode {
    // Absolute, so the reload watcher recognises the file in the paths its events name.
    let path = path.map(|path| std::path::absolute(&path).unwrap_or(path));
    let (loaded, files) = match &path {
        Some(path) => config::load_file_traced(path),
        None => (
            // Port 0 is the system's choice, known only after binding: links keep 8080 then.
            config::load_embedded_on(listen.map(|listen| listen.port()).filter(|port| *port != 0)),
            config::SourceFiles::default(),
        ),
    };
    let Loaded {
        mut config,
        warnings,
    } = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            print_config_error(&error);
            eprintln!(
                "portico did not start: fix the config above (`portico check FILE` shows the same report)"
            );
            return ExitCode::FAILURE;
        }
    };
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    if let Some(admin_listen) = admin_listen {
        config.server.admin_listen = Some(admin_listen);
    }
    let app = match portico::app::App::build(config).await {
        Ok(app) => match path {
            Some(path) => app.reloading_from(portico::reload::ConfigOrigin {
                path,
                files,
                listen,
                admin_listen,
            }),
            None => app,
        },
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match app.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
