//! Front doors: the client-facing formats. Each knows how to read its requests and render its
//! responses and errors; none knows about sockets or providers.

pub mod health;
pub mod openai;
pub mod openai_chat;
pub mod route_fields;
