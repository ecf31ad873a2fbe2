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
    /// Print the JSON Schema of the config file (or with --app, of one team's app file), for editors
    /// (yaml-language-server) and CI.
    Schema {
        /// The schema of an app file (`apps_from`) instead of the main config.
        #[arg(long)]
        app: bool,
    },
    /// Validate config files and report every problem with file:line:column; exits 1 on any error.
    Check {
        /// Config files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExplainFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files } => check(&files),
        Command::Schema { app } => write_out(if app {
            config::APP_SCHEMA
        } else {
            config::SCHEMA
        }),
        Command::Explain {
            config,
            tenant,
            user,
            groups,
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
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("error: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(serve(config, listen, admin_listen))
        }
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        match config::load_file(file) {
            Ok(Loaded { warnings, config }) => {
                for warning in &warnings {
                    println!("{warning}");
                }
                let apps: usize = config.tenants.iter().map(|t| t.apps.len()).sum();
                println!(
                    "{}: ok ({} tenant(s), {apps} app(s))",
                    file.display(),
                    config.tenants.len()
                );
            }
            Err(error) => {
                failed = true;
                print_config_error(&error);
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
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
    let loaded = match file {
        Some(file) => config::load_file(file),
        None => config::load_embedded(),
    };
    let config = match loaded {
        Ok(Loaded { config, .. }) => config,
        Err(error) => {
            print_config_error(&error);
            return ExitCode::FAILURE;
        }
    };
    let Some(tenant) = config.tenant(tenant_id) else {
        let ids: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
        eprintln!(
            "error: there is no tenant `{tenant_id}`\n    hint: the tenants: {}",
            ids.join(", ")
        );
        return ExitCode::FAILURE;
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
            return ExitCode::FAILURE;
        }
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
    match format {
        ExplainFormat::Text => write_out(&explanation.to_text()),
        ExplainFormat::Json => match serde_json::to_string_pretty(&explanation) {
            Ok(json) => write_out(&format!("{json}\n")),
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
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
