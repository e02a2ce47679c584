//! "A request that fails on a reused connection before any response byte is retried once on a
//! fresh one": forced down that path (the pooled connection is alive when taken, and the provider
//! hangs up only after reading the request, so the liveness check cannot catch it), counted at the
//! mock by connection. The liveness check itself is tested in src/upstream/pool.rs.

mod common;

use common::{Client, chat_body, config_text, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider};

const MODEL: &str = "acme/chat-small";

fn connection_ids(mock: &MockProvider) -> Vec<u64> {
    mock.requests().iter().map(|r| r.connection_id).collect()
}

#[test]
fn a_reused_connection_hung_up_before_the_answer_is_retried_once_on_a_fresh_one_and_a_fresh_one_is_not() {
    for (fault, what) in [(Fault::CloseBeforeHeaders, "FIN"), (Fault::ResetBeforeHeaders, "RST")] {
        let mock = MockProvider::start(MockConfig::default()).unwrap();
        let gateway = start_gateway(&config_text(&mock.base_url(), "", ""));
        let mut client = Client::connect(gateway.local_addr());
        assert_eq!(client.post("/v1/chat/completions", &[], &chat_body(MODEL, false)).status, 200);
        assert_eq!(connection_ids(&mock), [1], "{what}: the first answer left connection 1 in the pool");

        mock.set_config(MockConfig { fault: fault.clone(), ..MockConfig::default() });
        let failed = client.post("/v1/chat/completions", &[], &chat_body(MODEL, false));

        assert_eq!(failed.status, 502, "{what}: {}", failed.text());
        assert_eq!(
            connection_ids(&mock),
            [1, 1, 2],
            "{what}: sent on pooled connection 1, then once more on fresh connection 2, and no more"
        );
        let again = client.post("/v1/chat/completions", &[], &chat_body(MODEL, true));
        assert_eq!(again.status, 502, "{what}: {}", again.text());
        assert_eq!(connection_ids(&mock), [1, 1, 2, 3], "{what}: a fresh connection that fails is not retried");
    }
}
