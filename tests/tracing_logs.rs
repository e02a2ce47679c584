//! Process logs of the real binary on `tracing`: the default logfmt line keeps its fields, `[log]
//! format = "json"` turns every line into one JSON object, and `[log] level` sets levels per module.

mod common;

use common::Daemon;

fn config(log: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n{log}\n\
         [providers.mock]\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n\
         [models.\"acme/chat\"]\nendpoints = [{{ provider = \"mock\", model = \"m\" }}]\n",
        loadtest::refused_addr()
    )
}

#[test]
fn default_lines_are_logfmt_with_time_level_thread_target_and_message() {
    let daemon = Daemon::start("logfmt-lines", &config(""));

    let worker = daemon.seen.iter().find(|l| l.contains("serving with the")).expect("the worker says it serves");
    assert!(worker.starts_with("ts=20"), "{worker}");
    assert!(
        worker.contains(" level=info thread=corelay-w0 target=corelay::runtime::worker msg=\"worker 0 "),
        "{worker}"
    );
    let listening = daemon.seen.last().unwrap();
    assert!(listening.contains(" level=info thread=main target=corelay msg=\"corelay "), "{listening}");
}

#[test]
fn json_format_and_per_module_levels_come_from_the_config_file() {
    let log = "[log]\nformat = \"json\"\nlevel = \"info,corelay::runtime::worker=warn\"\n";
    let daemon = Daemon::start("json-lines", &config(log));

    assert!(!daemon.seen.iter().any(|l| l.contains("serving with the")), "worker info is off: {:?}", daemon.seen);
    let listening: serde_json::Value = serde_json::from_str(daemon.seen.last().unwrap()).expect("a JSON line");
    assert_eq!(listening["level"], "info");
    assert_eq!(listening["target"], "corelay");
    assert_eq!(listening["thread"], "main");
    assert!(listening["ts"].as_str().unwrap().ends_with('Z'));
    assert!(listening["msg"].as_str().unwrap().contains("listening on http://"), "{listening}");
}
