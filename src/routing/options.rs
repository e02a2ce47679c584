//! Per-request routing options: which providers to try first (`order`), which only (`only`), and which
//! models to fall back to (`models`). From the body's `providerOptions.gateway` (the AI SDK's shape) or,
//! for clients that cannot change the body, from `x-corelay-order`, `x-corelay-only` and
//! `x-corelay-models` headers (comma-separated). The body wins field by field.

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingOptions {
    pub order: Vec<String>,
    pub only: Option<Vec<String>>,
    pub models: Vec<String>,
}

#[derive(Deserialize)]
struct ProviderOptions {
    gateway: Option<GatewayOptions>,
}

#[derive(Deserialize)]
struct GatewayOptions {
    order: Option<Vec<String>>,
    only: Option<Vec<String>>,
    models: Option<Vec<String>>,
}

impl RoutingOptions {
    /// Parses the raw JSON of `providerOptions`; other providers' option blocks are ignored.
    pub fn from_provider_options(raw: &str) -> Result<RoutingOptions, String> {
        let parsed: ProviderOptions =
            sonic_rs::from_str(raw).map_err(|e| format!("`providerOptions.gateway` is invalid: {e}"))?;
        let gateway = parsed.gateway.unwrap_or(GatewayOptions { order: None, only: None, models: None });
        Ok(RoutingOptions {
            order: gateway.order.unwrap_or_default(),
            only: gateway.only,
            models: gateway.models.unwrap_or_default(),
        })
    }

    /// Fills fields the body left empty from the request headers.
    pub fn with_headers<'h>(mut self, header: impl Fn(&str) -> Option<&'h [u8]>) -> RoutingOptions {
        if self.order.is_empty()
            && let Some(list) = header("x-corelay-order").and_then(comma_list)
        {
            self.order = list;
        }
        if self.only.is_none() {
            self.only = header("x-corelay-only").and_then(comma_list);
        }
        if self.models.is_empty()
            && let Some(list) = header("x-corelay-models").and_then(comma_list)
        {
            self.models = list;
        }
        self
    }
}

fn comma_list(value: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(value).ok()?;
    let items: Vec<String> = text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    (!items.is_empty()).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ai_sdk_shape_and_ignores_other_providers() {
        let raw = r#"{"gateway":{"order":["vertex","bedrock"],"only":["vertex","bedrock","anthropic"],"models":["b"]},"anthropic":{"thinking":{}}}"#;
        let o = RoutingOptions::from_provider_options(raw).unwrap();
        assert_eq!(o.order, ["vertex", "bedrock"]);
        assert_eq!(o.only.as_deref(), Some(&["vertex".to_string(), "bedrock".into(), "anthropic".into()][..]));
        assert_eq!(o.models, ["b"]);
        assert!(RoutingOptions::from_provider_options(r#"{"gateway":{"order":"vertex"}}"#).is_err());
    }

    #[test]
    fn headers_fill_what_the_body_left_empty() {
        let o =
            RoutingOptions { order: vec!["a".into()], ..RoutingOptions::default() }.with_headers(|name| match name {
                "x-corelay-order" => Some(&b"x, y"[..]),
                "x-corelay-only" => Some(&b" p ,q,"[..]),
                "x-corelay-models" => Some(&b""[..]),
                _ => None,
            });
        assert_eq!(o.order, ["a"], "the body wins");
        assert_eq!(o.only, Some(vec!["p".to_string(), "q".into()]));
        assert!(o.models.is_empty());
    }
}
