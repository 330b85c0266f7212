//! Access that ends while a connection is open. A socket is authorized when
//! it joins; when the session behind its credential ends (logout, password
//! change, account deletion, device revocation) or its user stops being
//! allowed on a topic (left the room), the server announces a
//! [`Revocation`] and every instance acts on its own sockets: closes them,
//! or closes the channel. The hub keeps, per user, the connections that
//! hold a credential of theirs, so a revocation wakes only those.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::ConnId;

/// Topic on which instances tell each other about revocations; clients
/// cannot join it (their topics start with `realtime:`).
pub const CONTROL_TOPIC: &str = "tandem:control";
/// Event of a revocation on [`CONTROL_TOPIC`].
pub const REVOKE_EVENT: &str = "revoke";

/// Who a credential speaks for: a user and, for session cookies and
/// session-bound tokens, the login session it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user: Uuid,
    /// The login session's id, if the credential is tied to one.
    pub session: Option<String>,
}

/// Access that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// Login sessions of `user` ended: the one named `only`, else every one
    /// but `keep` (credentials tied to no session end with all of them).
    Sessions {
        /// Whose sessions.
        user: Uuid,
        /// Just this session.
        only: Option<String>,
        /// Every session but this one.
        keep: Option<String>,
    },
    /// `user` may no longer be on `topic` (e.g. `realtime:room:<id>`).
    Topic {
        /// Who.
        user: Uuid,
        /// The full topic name.
        topic: String,
    },
}

impl Revocation {
    /// The user it concerns.
    pub fn user(&self) -> Uuid {
        match self {
            Self::Sessions { user, .. } | Self::Topic { user, .. } => *user,
        }
    }

    /// Whether a credential of `identity` is dead after this.
    pub fn ends(&self, identity: &Identity) -> bool {
        let Self::Sessions { user, only, keep } = self else {
            return false;
        };
        let session = identity.session.as_deref();
        identity.user == *user
            && match (only, keep) {
                (Some(only), _) => session == Some(only.as_str()),
                (None, Some(keep)) => session != Some(keep.as_str()),
                (None, None) => true,
            }
    }
}

/// A connection's end of the revocation channel.
#[derive(Debug)]
pub struct Revocations {
    /// Revocations concerning a user this connection holds a credential of.
    pub rx: mpsc::Receiver<Arc<Revocation>>,
}

/// The hub's end: where to tell a connection.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    pub(crate) tx: mpsc::Sender<Arc<Revocation>>,
    /// Fired when the connection cannot take more: it must close (the
    /// safe outcome when a revocation might be lost).
    pub(crate) overflowed: Arc<Notify>,
}

/// Connections by the users whose credentials they hold.
#[derive(Default)]
pub(crate) struct Watchers {
    by_user: Mutex<HashMap<Uuid, HashMap<ConnId, Notifier>>>,
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, HashMap<ConnId, Notifier>>> {
        self.by_user.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn watch(&self, user: Uuid, conn: ConnId, notifier: &Notifier) {
        self.lock()
            .entry(user)
            .or_default()
            .insert(conn, notifier.clone());
    }

    pub(crate) fn unwatch(&self, user: Uuid, conn: ConnId) {
        let mut by_user = self.lock();
        if let Some(conns) = by_user.get_mut(&user) {
            conns.remove(&conn);
            if conns.is_empty() {
                by_user.remove(&user);
            }
        }
    }

    /// Tells every connection of the revocation's user.
    pub(crate) fn notify(&self, revocation: &Arc<Revocation>) {
        let by_user = self.lock();
        for notifier in by_user
            .get(&revocation.user())
            .into_iter()
            .flat_map(|c| c.values())
        {
            if notifier.tx.try_send(revocation.clone()).is_err() {
                notifier.overflowed.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_ends_the_credentials_it_names() {
        let user = Uuid::now_v7();
        let id = |session: Option<&str>| Identity {
            user,
            session: session.map(str::to_owned),
        };
        let one = Revocation::Sessions {
            user,
            only: Some("a".into()),
            keep: None,
        };
        assert!(one.ends(&id(Some("a"))));
        assert!(!one.ends(&id(Some("b"))) && !one.ends(&id(None)));
        let others = Revocation::Sessions {
            user,
            only: None,
            keep: Some("a".into()),
        };
        assert!(!others.ends(&id(Some("a"))));
        assert!(others.ends(&id(Some("b"))) && others.ends(&id(None)));
        let all = Revocation::Sessions {
            user,
            only: None,
            keep: None,
        };
        assert!(all.ends(&id(None)));
        let stranger = Identity {
            user: Uuid::now_v7(),
            session: None,
        };
        assert!(!all.ends(&stranger));
        let json = serde_json::to_value(&one).expect("json");
        assert_eq!(serde_json::from_value::<Revocation>(json).ok(), Some(one));
    }
}
