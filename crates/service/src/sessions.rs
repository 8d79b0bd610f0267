//! Dashboard sessions: logging in with an API key opens a stored session (so it survives restarts
//! and is shared by every process on one database), found again by its token. The token itself is
//! never stored, only its digest; a session ends when it expires, when it is closed, or when its
//! key is no longer configured with its role. Cookies and forms are the HTTP crate's.

use leadscore_core::time::Millis;
use leadscore_store::SessionRow;

use crate::app::App;
use crate::auth::{Role, fingerprint, random_token, token_digest};
use crate::error::{Code, ServiceError};

/// How long a session lasts.
pub const SESSION_MS: Millis = 12 * 3_600_000;

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub role: Role,
    /// The token every form must carry (checked on each POST).
    pub csrf: String,
}

impl Session {
    pub fn admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl App {
    /// Opens a session for an API key (`read` or `admin`); returns its token and the session.
    /// A write key is `write_key_not_allowed`; any other key `invalid_api_key`.
    pub fn open_session(&self, key: &str) -> Result<(String, Session), ServiceError> {
        let role = match self.keys.role_of(key) {
            Some(role @ (Role::Read | Role::Admin)) => role,
            Some(Role::Write) => {
                return Err(ServiceError::user(Code::WriteKeyNotAllowed, "a write key cannot open the dashboard"));
            }
            None => return Err(ServiceError::user(Code::InvalidApiKey, "the API key is not valid")),
        };
        let (Ok(token), Ok(csrf)) = (random_token(32), random_token(16)) else {
            return Err(ServiceError::internal("login", &"the system random number generator failed"));
        };
        let now = self.clock.now();
        let row = SessionRow {
            token_digest: token_digest(&token),
            role: role.as_str().to_owned(),
            key_fingerprint: fingerprint(key),
            csrf: csrf.clone(),
            created_at: now,
            expires_at: now + SESSION_MS,
        };
        self.store.write(|tx| {
            tx.purge_sessions(now)?;
            tx.insert_session(&row)
        })?;
        Ok((token, Session { role, csrf }))
    }

    /// The live session of this token, if any.
    pub fn session(&self, token: &str) -> Result<Option<Session>, ServiceError> {
        let now = self.clock.now();
        let row = self.store.read(|tx| tx.session(&token_digest(token), now))?;
        Ok(row.and_then(|row| {
            let role = Role::parse(&row.role)?;
            self.keys.has_fingerprint(&row.key_fingerprint, role).then_some(Session { role, csrf: row.csrf })
        }))
    }

    /// Ends the session of this token.
    pub fn close_session(&self, token: &str) -> Result<(), ServiceError> {
        Ok(self.store.write(|tx| tx.delete_session(&token_digest(token)))?)
    }
}
