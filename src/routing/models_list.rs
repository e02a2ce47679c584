//! The `GET /v1/models` body: every model the gateway serves, in OpenAI's list shape (which the
//! OpenAI SDKs and most tools read), built once per routes version. Routing owns it because the list
//! is the routes', not any one front door's.

use serde::Serialize;

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelEntry<'a>>,
}

#[derive(Serialize)]
struct ModelEntry<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

/// The body for the given (id, owner) pairs. `created` is the config load time: the gateway does not
/// know when a provider released a model.
pub fn model_list_json<'a>(models: impl Iterator<Item = (&'a str, &'a str)>, created: u64) -> Vec<u8> {
    let data = models.map(|(id, owned_by)| ModelEntry { id, object: "model", created, owned_by }).collect();
    serde_json::to_vec(&ModelList { object: "list", data }).expect("serializing plain strings cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_list_has_openai_shape() {
        let body = model_list_json([("acme/chat", "acme")].into_iter(), 7);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["id"], "acme/chat");
        assert_eq!(v["data"][0]["object"], "model");
        assert_eq!(v["data"][0]["owned_by"], "acme");
        assert_eq!(v["data"][0]["created"], 7);
    }
}
