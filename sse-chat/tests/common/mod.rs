//! What sse-chat's tests share: reading a member's `welcome`.

#![allow(dead_code)]

use sse_shared::testing::{SseConnection, TestResult, json_data};

/// What sse-chat's `welcome` says: the first event of a member's stream.
pub struct ChatWelcome {
    /// The member's id.
    pub user_id: String,
    /// The member's token (it posts with it).
    pub token: String,
    /// The names of the members online, this one included.
    pub online: Vec<String>,
    /// The whole event data.
    pub data: serde_json::Value,
}

/// Reads the welcome off a member's stream.
pub trait ReadWelcome {
    /// Reads sse-chat's welcome, which must come first, carry no id (it is not part of
    /// the history) and hold a 128-bit token as 32 hex digits.
    async fn chat_welcome(&mut self) -> TestResult<ChatWelcome>;
}

impl ReadWelcome for SseConnection {
    /// Reads sse-chat's welcome, which must come first, carry no id (it is not part of
    /// the history) and hold a 128-bit token as 32 hex digits.
    async fn chat_welcome(&mut self) -> TestResult<ChatWelcome> {
        let welcome = self.next_event().await?;
        if welcome.event.as_deref() != Some("welcome") || welcome.id.is_some() {
            return Err(format!("not a welcome first: {welcome:?}").into());
        }
        let data = json_data(&welcome)?;
        let token = data["token"].as_str().unwrap_or_default().to_owned();
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("not 128 bits as 32 hex digits: {token:?}").into());
        }
        let online = data["online"].as_array().ok_or("no online list")?;
        Ok(ChatWelcome {
            user_id: data["user"]["id"].as_str().ok_or("no user id")?.to_owned(),
            token,
            online: online
                .iter()
                .filter_map(|u| u["name"].as_str().map(str::to_owned))
                .collect(),
            data,
        })
    }
}
