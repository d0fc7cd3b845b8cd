//! `docker-compose.yml` and `Dockerfile`, checked without a Docker engine
//! (none runs where this project is built): the compose file is parsed and
//! its `${VAR:-default}` interpolation done here the way Compose does it, then
//! the app's environment is fed to the app's own config parser.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use secrecy::ExposeSecret;
use sponsorgate::config::{Config, Needs};
use yaml_rust2::{Yaml, YamlLoader};

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn compose() -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read("docker-compose.yml")).expect("valid YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    docs.remove(0)
}

fn service<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &doc["services"][name];
    assert!(
        !s.is_badvalue(),
        "docker-compose.yml has no service {name:?}"
    );
    s
}

fn str_list(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(items) => items.iter().map(scalar).collect(),
        Yaml::String(s) => vec![s.clone()],
        other => panic!("expected a list of strings, got {other:?}"),
    }
}

fn scalar(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Null => String::new(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// A service's `environment`, in either of Compose's two forms (raw, not
/// interpolated), with a YAML merge key (`<<: *anchor`) resolved the way
/// Compose does it: the map's own entries win.
fn environment(s: &Yaml) -> HashMap<String, String> {
    match &s["environment"] {
        Yaml::Hash(map) => {
            let mut out: HashMap<String, String> = HashMap::new();
            if let Some(Yaml::Hash(merged)) = map.get(&Yaml::String("<<".into())) {
                out.extend(merged.iter().map(|(k, v)| (scalar(k), scalar(v))));
            }
            out.extend(
                map.iter()
                    .filter(|(k, _)| scalar(k) != "<<")
                    .map(|(k, v)| (scalar(k), scalar(v))),
            );
            out
        }
        Yaml::Array(items) => items
            .iter()
            .map(|item| {
                let item = scalar(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Yaml::BadValue => HashMap::new(),
        other => panic!("environment must be a map or a list, got {other:?}"),
    }
}

/// Compose interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `$VAR`, and `$$` for a literal `$`. `env` plays the shell environment + `.env`.
fn interpolate(raw: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}').expect("unclosed ${");
            let expr = &after[..end];
            rest = &after[end + 1..];
            let value = if let Some((name, default)) = expr.split_once(":-") {
                env.get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or_else(|| interpolate(default, env))
            } else if let Some((name, default)) = expr.split_once('-') {
                env.get(name)
                    .cloned()
                    .unwrap_or_else(|| interpolate(default, env))
            } else {
                assert!(
                    !expr.contains(['?', ':', '+']),
                    "unsupported interpolation {expr:?}"
                );
                env.get(expr).cloned().unwrap_or_default()
            };
            out.push_str(&value);
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            assert!(len > 0, "a lone $ in {raw:?}: write $$");
            out.push_str(env.get(&rest[..len]).map(String::as_str).unwrap_or(""));
            rest = &rest[len..];
        }
    }
    out.push_str(rest);
    out
}

/// The variables `.env.example` documents (`NAME=` lines).
fn documented_vars() -> Vec<String> {
    read(".env.example")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|name| {
            !name.is_empty()
                && !name.starts_with('#')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .collect()
}

/// `"UPPER_CASE"` string literals in the non-test part of `src/config.rs`:
/// the variables the config parser reads.
fn vars_read_by_config() -> BTreeSet<String> {
    let source = read("src/config.rs");
    let code = source.split("#[cfg(test)]").next().unwrap();
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices('"') {
        let rest = &code[i + 1..];
        let Some(end) = rest.find('"') else { break };
        let candidate = &rest[..end];
        if candidate.len() > 2
            && candidate.starts_with(|c: char| c.is_ascii_uppercase())
            && candidate
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            names.insert(candidate.to_owned());
        }
    }
    names
}

/// The app's environment as Compose would pass it, given `env` (shell + .env).
fn app_env(doc: &Yaml, env: &HashMap<String, String>) -> HashMap<String, String> {
    service_env(doc, "app", env)
}

/// A service's environment as Compose would pass it, given `env`.
fn service_env(doc: &Yaml, name: &str, env: &HashMap<String, String>) -> HashMap<String, String> {
    environment(service(doc, name))
        .into_iter()
        .map(|(k, v)| (k, interpolate(&v, env)))
        .collect()
}

fn port_of(url: &str) -> u16 {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url:?}: {e}"))
        .port_or_known_default()
        .unwrap()
}

fn host_of(url: &str) -> String {
    url::Url::parse(url).unwrap().host_str().unwrap().to_owned()
}

/// `"HOST:CONTAINER"` port mappings of a service, as (host, container).
fn ports(s: &Yaml) -> Vec<(u16, u16)> {
    str_list(&s["ports"])
        .iter()
        .map(|p| {
            let p = p.split('/').next().unwrap();
            let parts: Vec<&str> = p.split(':').collect();
            let n = parts.len();
            assert!(n >= 2, "port {p:?} should name host and container ports");
            (parts[n - 2].parse().unwrap(), parts[n - 1].parse().unwrap())
        })
        .collect()
}

/// The value after `flag` in a command: a list of arguments as given, or one
/// string split at spaces.
fn flag_value(command: &[String], flag: &str) -> Option<String> {
    let words: Vec<String> = match command {
        [line] => line.split_whitespace().map(str::to_owned).collect(),
        list => list.to_vec(),
    };
    words
        .iter()
        .position(|w| w == flag)
        .map(|i| words.get(i + 1).cloned().unwrap_or_default())
}

#[test]
fn env_example_lists_every_variable_the_config_reads() {
    let documented: BTreeSet<String> = documented_vars().into_iter().collect();
    let read_by_config = vars_read_by_config();
    assert!(read_by_config.contains("SPONSORABLE"), "{read_by_config:?}");
    let undocumented: Vec<_> = read_by_config.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "read by src/config.rs but not in .env.example: {undocumented:?}"
    );
}

#[test]
fn every_documented_variable_is_wired_into_the_app_service() {
    let doc = compose();
    let env = environment(service(&doc, "app"));
    let missing: Vec<_> = documented_vars()
        .into_iter()
        .filter(|v| !env.contains_key(v))
        .collect();
    assert!(
        missing.is_empty(),
        "in .env.example but not in the app service's environment: {missing:?}"
    );
    // Each can be set from .env, except what the stack's topology fixes.
    let fixed = ["BIND", "REDIS_URL", "ENTERPRISE_REDIS_URL"];
    for (name, raw) in &env {
        if !fixed.contains(&name.as_str()) {
            assert!(
                raw.contains(&format!("${{{name}")),
                "app environment {name}={raw:?} cannot be set from .env"
            );
        }
    }
}

#[test]
fn the_app_starts_with_no_env_file_and_uses_the_simulator() {
    let doc = compose();
    let env = app_env(&doc, &HashMap::new());
    let config = Config::from_map(&env, Needs::Everything)
        .unwrap_or_else(|e| panic!("the app would not start with no .env: {e}"));

    // The simulator is the GitHub, reached at the port it listens on, with
    // the client credentials the app sends.
    let sim = service(&doc, "github-sim");
    let sim_command = str_list(&sim["command"]);
    let sim_bind = flag_value(&sim_command, "--bind").expect("github-sim --bind");
    let sim_port: u16 = sim_bind.rsplit(':').next().unwrap().parse().unwrap();
    let github = config.github.as_ref().expect("GitHub settings");
    for url in [&github.web_url, &github.api_url, &github.graphql_url] {
        assert_eq!(url.host_str(), Some("localhost"), "{url}");
        assert_eq!(url.port_or_known_default(), Some(sim_port), "{url}");
    }
    assert_eq!(
        flag_value(&sim_command, "--client-id").as_deref(),
        Some(github.client_id.as_str())
    );
    assert_eq!(
        flag_value(&sim_command, "--client-secret").as_deref(),
        Some(github.client_secret.expose_secret())
    );
    // localhost:PORT is the same place for the browser and for the app only
    // when the simulator shares the app's network namespace and the app
    // publishes the simulator's port.
    assert_eq!(scalar(&sim["network_mode"]), "service:app");
    assert!(
        ports(service(&doc, "app")).contains(&(sim_port, sim_port)),
        "the app service publishes the simulator's port {sim_port}"
    );
    assert!(config.enterprise_redis_url.is_some(), "sync is on");
}

#[test]
fn setting_the_github_variables_in_env_switches_to_real_github() {
    let doc = compose();
    // What a user's .env holds after copying .env.example and filling it in.
    let mut env: HashMap<String, String> = read(".env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    env.insert("GITHUB_CLIENT_ID".into(), "Iv1.real".into());
    env.insert("GITHUB_CLIENT_SECRET".into(), "real-secret".into());
    env.insert("SPONSORABLE".into(), "my-org".into());
    let config = Config::from_map(&app_env(&doc, &env), Needs::Everything).expect("config");
    let github = config.github.expect("GitHub settings");
    assert_eq!(github.web_url.as_str(), "https://github.com/");
    assert_eq!(github.api_url.as_str(), "https://api.github.com/");
    assert_eq!(github.client_id, "Iv1.real");
    assert_eq!(config.sponsorable, "my-org");
    // The topology stays the stack's own, whatever .env.example says.
    assert_eq!(host_of(config.redis_url.expose_secret()), "redis-local");
    assert_eq!(config.bind.ip().to_string(), "0.0.0.0");
}

#[test]
fn the_local_redis_is_volatile_and_notifies_the_worker() {
    let doc = compose();
    let local = service(&doc, "redis-local");
    let command = str_list(&local["command"]);
    assert_eq!(
        command.first().map(String::as_str),
        Some("redis-server"),
        "{command:?}"
    );
    let flags = flag_value(&command, "--notify-keyspace-events").expect("keyspace flags");
    for flag in ['E', 'g', 's', 'h', 'm'] {
        assert!(
            flags.contains(flag) || (flag != 'm' && flags.contains('A')),
            "notify-keyspace-events {flags:?} lacks {flag}"
        );
    }
    assert_eq!(
        flag_value(&command, "--save").as_deref(),
        Some(""),
        "no RDB"
    );
    assert_eq!(
        flag_value(&command, "--appendonly").as_deref(),
        Some("no"),
        "no AOF"
    );
    assert!(local["volumes"].is_badvalue(), "no volume: nothing kept");

    // The app reaches it by service name on its port.
    let env = app_env(&doc, &HashMap::new());
    let url = &env["REDIS_URL"];
    assert_eq!(host_of(url), "redis-local");
    let port = flag_value(&command, "--port").map_or(6379, |p| p.parse().unwrap());
    assert_eq!(port_of(url), port);
}

#[test]
fn the_cluster_profile_runs_the_app_on_two_three_primary_clusters() {
    let doc = compose();
    let locals = ["redis-local-1", "redis-local-2", "redis-local-3"];
    let remotes = [
        "redis-enterprise-1",
        "redis-enterprise-2",
        "redis-enterprise-3",
    ];
    for name in locals.iter().chain(&remotes).chain(&[
        "app-cluster",
        "github-sim-cluster",
        "redis-cluster-init",
    ]) {
        assert_eq!(
            str_list(&service(&doc, name)["profiles"]),
            ["cluster"],
            "{name} only runs with --profile cluster"
        );
    }
    for env in [
        HashMap::new(),
        HashMap::from([("ENTERPRISE_REDIS_PASSWORD".to_owned(), "s3cret".to_owned())]),
    ] {
        let app = service_env(&doc, "app-cluster", &env);
        let config = Config::from_map(&app, Needs::Everything).expect("the cluster app's config");
        let seeds = |url: &str| match sponsorgate_sync::RedisTarget::parse(url).unwrap() {
            sponsorgate_sync::RedisTarget::Cluster(seeds) => seeds,
            other => panic!("not a cluster URL: {other:?}"),
        };
        let local = seeds(config.redis_url.expose_secret());
        let hosts: Vec<String> = local.iter().map(|s| s.addr().to_string()).collect();
        assert_eq!(hosts, locals.map(|h| format!("{h}:6379")));
        let remote = seeds(
            config
                .enterprise_redis_url
                .as_ref()
                .unwrap()
                .expose_secret(),
        );
        let hosts: Vec<String> = remote.iter().map(|s| s.addr().to_string()).collect();
        assert_eq!(hosts, remotes.map(|h| format!("{h}:6379")));
        let password = env
            .get("ENTERPRISE_REDIS_PASSWORD")
            .map_or("dev-enterprise-password", String::as_str);
        assert_eq!(remote[0].redis_settings().password(), Some(password));
        for name in remotes {
            let node = service_env(&doc, name, &env);
            assert_eq!(node["ENTERPRISE_REDIS_PASSWORD"], password, "{name}");
        }
        // Its own ports, beside the single-server stack's.
        assert_eq!(port_of(&app["PUBLIC_URL"]), 8081);
        assert_eq!(port_of(&app["GITHUB_URL"]), 9091);
    }
    let ports = ports(service(&doc, "app-cluster"));
    assert!(
        ports.contains(&(8081, 8080)) && ports.contains(&(9091, 9091)),
        "{ports:?}"
    );
    let sim = str_list(&service(&doc, "github-sim-cluster")["command"]);
    assert_eq!(flag_value(&sim, "--bind").as_deref(), Some("0.0.0.0:9091"));

    for name in locals {
        let command = str_list(&service(&doc, name)["command"]);
        assert_eq!(
            flag_value(&command, "--cluster-enabled").as_deref(),
            Some("yes")
        );
        assert_eq!(flag_value(&command, "--save").as_deref(), Some(""));
        assert_eq!(flag_value(&command, "--appendonly").as_deref(), Some("no"));
        let flags = flag_value(&command, "--notify-keyspace-events").unwrap();
        assert!(
            flags.chars().all(|f| "Egshm".contains(f)) && flags.len() == 5,
            "{flags}"
        );
    }
    for name in remotes {
        let command = str_list(&service(&doc, name)["command"]).join(" ");
        for part in [
            "--cluster-enabled yes",
            "--appendonly yes",
            "--requirepass",
            "--masterauth",
        ] {
            assert!(command.contains(part), "{name}: {command}");
        }
    }
    // One step joins both sets of nodes, after they answer; the app waits for it.
    let init = service(&doc, "redis-cluster-init");
    let script = str_list(&init["command"]).join(" ");
    assert!(script.contains("--cluster create"), "{script}");
    for name in locals.iter().chain(&remotes) {
        assert!(script.contains(name), "{name} is not joined: {script}");
        assert_eq!(
            scalar(&init["depends_on"][*name]["condition"]),
            "service_healthy"
        );
    }
    assert_eq!(
        scalar(&service(&doc, "app-cluster")["depends_on"]["redis-cluster-init"]["condition"]),
        "service_completed_successfully"
    );
}

#[test]
fn the_enterprise_redis_has_a_password_and_keeps_an_aof_on_a_volume() {
    let doc = compose();
    let remote = service(&doc, "redis-enterprise");
    let command = str_list(&remote["command"]).join(" ");
    assert!(command.contains("redis-server"), "{command}");
    assert!(command.contains("--appendonly yes"), "{command}");
    assert!(command.contains("--requirepass"), "{command}");

    // The password the server requires is the one the app's URL carries,
    // with no .env and with one that sets it.
    for env in [
        HashMap::new(),
        HashMap::from([("ENTERPRISE_REDIS_PASSWORD".to_owned(), "s3cret".to_owned())]),
    ] {
        let server_env: HashMap<String, String> = environment(remote)
            .into_iter()
            .map(|(k, v)| (k, interpolate(&v, &env)))
            .collect();
        let command = interpolate(&command, &env);
        let password = command
            .split("--requirepass")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .trim_matches(['"', '\''])
            .to_owned();
        // `$VAR` inside `sh -c` is expanded by the container's shell.
        let password = match password.strip_prefix('$') {
            Some(var) => server_env
                .get(var.trim_matches(['{', '}']))
                .cloned()
                .unwrap_or_default(),
            None => password,
        };
        assert!(!password.is_empty(), "the enterprise Redis has a password");
        let url = url::Url::parse(&app_env(&doc, &env)["ENTERPRISE_REDIS_URL"]).unwrap();
        assert_eq!(url.host_str(), Some("redis-enterprise"));
        assert_eq!(url.password(), Some(password.as_str()));
        assert_eq!(url.port_or_known_default(), Some(6379));
    }

    // AOF on a named volume mounted at the data directory.
    let volumes = str_list(&remote["volumes"]);
    let (name, mount) = volumes[0].split_once(':').expect("NAME:/data");
    assert_eq!(mount, "/data", "redis:7 keeps its AOF in /data");
    assert!(
        !doc["volumes"][name].is_badvalue(),
        "volume {name} is declared at the top level"
    );
}

#[test]
fn ports_and_healthchecks_line_up() {
    let doc = compose();
    let app = service(&doc, "app");
    let env = app_env(&doc, &HashMap::new());
    let config = Config::from_map(&env, Needs::Everything).unwrap();
    let bind_port = config.bind.port();
    assert!(
        config.bind.ip().is_unspecified(),
        "BIND must listen on all interfaces inside a container, not {}",
        config.bind
    );
    assert!(
        ports(app).contains(&(bind_port, bind_port)),
        "the app publishes BIND's port {bind_port}"
    );
    // The public URL (the OAuth redirect) is the published port.
    assert_eq!(config.public_url.port_or_known_default(), Some(bind_port));

    let test = str_list(&app["healthcheck"]["test"]);
    let url = test
        .iter()
        .find(|w| w.starts_with("http://"))
        .expect("a URL in the app's healthcheck");
    assert_eq!(url::Url::parse(url).unwrap().path(), "/healthz");
    assert_eq!(port_of(url), bind_port, "healthcheck hits BIND's port");

    // The app waits for healthy Redis servers, and each has a healthcheck.
    for dep in ["redis-local", "redis-enterprise"] {
        assert_eq!(
            scalar(&app["depends_on"][dep]["condition"]),
            "service_healthy",
            "app depends on {dep} being healthy"
        );
        let check = str_list(&service(&doc, dep)["healthcheck"]["test"]).join(" ");
        assert!(
            check.contains("redis-cli") && check.contains("ping"),
            "{check}"
        );
    }
    let enterprise_check =
        str_list(&service(&doc, "redis-enterprise")["healthcheck"]["test"]).join(" ");
    assert!(
        enterprise_check.contains("-a "),
        "the enterprise healthcheck authenticates: {enterprise_check}"
    );

    // The Dockerfile's HEALTHCHECK agrees with the compose one.
    let dockerfile = read("Dockerfile");
    let health = dockerfile
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("Dockerfile HEALTHCHECK");
    assert!(
        health.contains(&format!("127.0.0.1:{bind_port}/healthz")),
        "{health}"
    );
    assert!(dockerfile.contains(&format!("EXPOSE {bind_port}")));
}

#[test]
fn the_dockerfile_builds_the_release_binary_and_runs_it_as_non_root() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let build = lines
        .iter()
        .find(|l| l.starts_with("RUN cargo build"))
        .expect("a RUN cargo build line");
    assert!(build.contains("--release"), "{build}");
    assert!(build.contains("--locked"), "{build}");
    assert!(build.contains("-p sponsorgate"), "{build}");

    // Multi-stage: the runtime image copies the release binary from the build stage.
    assert!(
        lines.iter().filter(|l| l.starts_with("FROM ")).count() >= 2,
        "multi-stage build"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("COPY --from=") && l.contains("/target/release/sponsorgate ")));

    // The last USER before CMD is not root.
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !matches!(user.trim(), "root" | "0" | "0:0"),
        "runs as {user}"
    );
    let entrypoint = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint, r#"["sponsorgate"]"#);
    let cmd = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("CMD");
    assert_eq!(cmd, r#"["serve"]"#);

    // The runtime image (the last stage, the default target) holds
    // `sponsorgate` alone; the simulator is a target of its own.
    let stages: Vec<(String, Vec<&str>)> = dockerfile
        .split("\nFROM ")
        .skip(1)
        .map(|stage| {
            let name = stage
                .lines()
                .next()
                .and_then(|l| l.split(" AS ").nth(1))
                .unwrap_or("")
                .trim()
                .to_owned();
            (name, stage.lines().map(str::trim).collect())
        })
        .collect();
    let (last, runtime) = stages.last().expect("stages");
    assert_eq!(last, "runtime", "the default target is the runtime image");
    assert!(
        runtime.iter().all(|l| !l.contains("github-sim")),
        "the runtime image holds no simulator: {runtime:?}"
    );
    let sim_stage = stages
        .iter()
        .find(|(name, _)| name == "github-sim")
        .expect("a github-sim target");
    assert!(sim_stage
        .1
        .iter()
        .all(|l| !l.contains("/target/release/sponsorgate ")));
    assert!(
        build.contains("-p github-sim"),
        "the build stage builds the simulator for its target"
    );

    // Compose builds each service from its own target.
    let doc = compose();
    for (name, target) in [("app", "runtime"), ("github-sim", "github-sim")] {
        let build = &service(&doc, name)["build"];
        assert_eq!(scalar(&build["context"]), ".", "{name} build context");
        assert_eq!(scalar(&build["target"]), target, "{name} build target");
    }
}

#[test]
fn compose_publishes_on_loopback_only() {
    let doc = compose();
    let services = doc["services"].as_hash().expect("services");
    for (name, service) in services {
        if service["ports"].is_badvalue() {
            continue;
        }
        for port in str_list(&service["ports"]) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{} publishes {port:?} beyond this machine",
                scalar(name)
            );
        }
    }
}

#[test]
fn the_compose_interpolation_here_behaves_like_compose() {
    let env = HashMap::from([
        ("SET".to_owned(), "x".to_owned()),
        ("EMPTY".to_owned(), String::new()),
    ]);
    assert_eq!(interpolate("${SET:-d}", &env), "x");
    assert_eq!(interpolate("${EMPTY:-d}", &env), "d");
    assert_eq!(interpolate("${EMPTY-d}", &env), "");
    assert_eq!(interpolate("${UNSET-d}", &env), "d");
    assert_eq!(interpolate("${UNSET}", &env), "");
    assert_eq!(interpolate("a$$b $SET", &env), "a$b x");
    assert_eq!(
        interpolate("redis://:${UNSET:-pw}@h:1", &env),
        "redis://:pw@h:1"
    );
}
