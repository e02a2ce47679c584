//! Azure OpenAI through the running gateway: OpenAI's format at a deployment path with `api-version`,
//! the key in an `api-key` header, no `Authorization`.

mod common;

use common::{Client, PROVIDER_KEY, chat_body, start_gateway};
use loadtest::{MockConfig, MockProvider};

#[test]
fn azure_deployments_get_the_api_key_header_and_the_deployment_path() {
    let mock = MockProvider::start(MockConfig::default()).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[providers.azure]\nkind = \"azure\"\nbase_url = \"http://{}\"\napi_version = \"2024-10-21\"\n[models.\"azure/gpt-4o\"]\nendpoints = [{{ provider = \"azure\", model = \"my-gpt4o-deployment\" }}]\n",
        mock.addr()
    );
    let gateway = start_gateway(&config);
    let mut client = Client::connect(gateway.local_addr());

    let plain = client.post(
        "/v1/chat/completions",
        &[("authorization", "Bearer client-secret")],
        &chat_body("azure/gpt-4o", false),
    );
    let streamed = client.post("/v1/chat/completions", &[], &chat_body("azure/gpt-4o", true));

    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(plain.json()["model"], "azure/gpt-4o");
    assert!(streamed.sse_data().1, "{}", streamed.text());
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21");
    assert_eq!(seen.header("api-key"), Some(PROVIDER_KEY));
    assert_eq!(seen.header("authorization"), None, "neither the client's credential nor a Bearer");
}
