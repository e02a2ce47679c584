//! Which listener a connection came in on, and which paths that listener serves: with `admin.listen`
//! set, the admin endpoints (`/metrics`, `/v1/stats`, `/dashboard`, `/admin/*`) move off the client
//! listener onto their own, so scrapes and the dashboard can stay on a private interface.
//!
//! Owns only the split of paths between listeners; routing, authentication and the handlers
//! themselves stay in `dispatch`.

/// The role of the listener a connection was accepted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Listener {
    /// The only listener (no `admin.listen`): every path.
    #[default]
    Both,
    /// The client listener while an admin listener exists: every path but the admin ones.
    Public,
    /// The admin listener: the admin paths and `/healthz` (for probes).
    Admin,
}

/// The paths that move to the admin listener.
pub fn is_admin_path(path: &str) -> bool {
    matches!(path, "/metrics" | "/v1/stats" | "/dashboard") || path.starts_with("/admin/")
}

impl Listener {
    /// Whether a request for `path` is served here; others get the 404 an unknown path gets.
    pub fn serves(self, path: &str) -> bool {
        match self {
            Listener::Both => true,
            Listener::Public => !is_admin_path(path),
            Listener::Admin => is_admin_path(path) || path == "/healthz",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_are_served_by_exactly_one_listener_when_split() {
        for path in ["/metrics", "/v1/stats", "/dashboard", "/admin/reload"] {
            assert!(Listener::Admin.serves(path) && !Listener::Public.serves(path) && Listener::Both.serves(path));
        }
        for path in ["/v1/chat/completions", "/v1/models", "/v1/messages", "/v1/ai/language-model"] {
            assert!(!Listener::Admin.serves(path) && Listener::Public.serves(path));
        }
        assert!(Listener::Admin.serves("/healthz") && Listener::Public.serves("/healthz"));
        assert!(!is_admin_path("/administrator") && !is_admin_path("/metrics/x"));
    }
}
