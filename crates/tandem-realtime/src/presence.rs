//! Presence of one channel: who is here, keyed by user id (the server sets
//! the key; a client cannot appear as someone else), with one meta per
//! connection that tracked.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::ConnId;

/// One connection's tracked state under a key.
#[derive(Debug, Clone, PartialEq)]
struct Meta {
    conn: ConnId,
    phx_ref: String,
    payload: Map<String, Value>,
}

impl Meta {
    fn to_json(&self) -> Value {
        let mut meta = self.payload.clone();
        meta.insert("phx_ref".into(), Value::String(self.phx_ref.clone()));
        Value::Object(meta)
    }
}

/// A change to announce as `presence_diff`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Diff {
    joins: BTreeMap<String, Vec<Value>>,
    leaves: BTreeMap<String, Vec<Value>>,
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    /// The `presence_diff` payload: `{joins: {key: {metas}}, leaves: {key: {metas}}}`.
    pub fn to_json(&self) -> Value {
        let side = |m: &BTreeMap<String, Vec<Value>>| -> Value {
            m.iter()
                .map(|(k, metas)| (k.clone(), json!({ "metas": metas })))
                .collect::<Map<_, _>>()
                .into()
        };
        json!({ "joins": side(&self.joins), "leaves": side(&self.leaves) })
    }

    /// Folds `other` (a later change) into this one.
    pub fn merge(&mut self, other: Diff) {
        for (k, mut v) in other.joins {
            self.joins.entry(k).or_default().append(&mut v);
        }
        for (k, mut v) in other.leaves {
            self.leaves.entry(k).or_default().append(&mut v);
        }
    }
}

/// Presence of one channel.
#[derive(Debug, Default)]
pub struct Presence {
    by_key: BTreeMap<String, Vec<Meta>>,
    next_ref: u64,
}

impl Presence {
    /// `conn` tracks `payload` under `key`, replacing what it tracked there
    /// before. Refs are `{instance}.{conn}.{n}`: unique across instances.
    pub fn track(
        &mut self,
        key: &str,
        conn: ConnId,
        payload: Map<String, Value>,
        instance: &str,
    ) -> Diff {
        let mut diff = self.remove(conn, Some(key));
        self.next_ref += 1;
        let meta = Meta {
            conn,
            phx_ref: format!("{instance}.{}.{}", conn.0, self.next_ref),
            payload,
        };
        diff.joins
            .entry(key.to_owned())
            .or_default()
            .push(meta.to_json());
        self.by_key.entry(key.to_owned()).or_default().push(meta);
        diff
    }

    /// `conn` stops tracking (untrack, leave, or disconnect).
    pub fn untrack(&mut self, conn: ConnId) -> Diff {
        self.remove(conn, None)
    }

    /// Removes `conn`'s metas (under `only` if given).
    fn remove(&mut self, conn: ConnId, only: Option<&str>) -> Diff {
        let mut diff = Diff::default();
        self.by_key.retain(|key, metas| {
            if only.is_some_and(|k| k != key) {
                return true;
            }
            let (gone, kept): (Vec<Meta>, Vec<Meta>) =
                metas.drain(..).partition(|m| m.conn == conn);
            if !gone.is_empty() {
                diff.leaves
                    .entry(key.clone())
                    .or_default()
                    .extend(gone.iter().map(Meta::to_json));
            }
            *metas = kept;
            !metas.is_empty()
        });
        diff
    }

    /// The `presence_state` payload: `{key: {metas: [...]}}`.
    pub fn state(&self) -> Value {
        self.by_key
            .iter()
            .map(|(k, metas)| {
                let metas: Vec<Value> = metas.iter().map(Meta::to_json).collect();
                (k.clone(), json!({ "metas": metas }))
            })
            .collect::<Map<_, _>>()
            .into()
    }

    /// How many metas there would be, in all and under `key`, without
    /// `conn`'s under `key` (which a new track by `conn` replaces).
    pub fn counts_without(&self, key: &str, conn: ConnId) -> (usize, usize) {
        let total: usize = self.by_key.values().map(Vec::len).sum();
        let under_key = self.by_key.get(key).map_or(0, Vec::len);
        let own = self
            .by_key
            .get(key)
            .map_or(0, |metas| metas.iter().filter(|m| m.conn == conn).count());
        (total - own, under_key - own)
    }

    /// Number of keys present.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether nobody is present.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// Presence bounds of one topic, so no one can make its `presence_state`
/// too big to send (and the topic unjoinable).
#[derive(Debug, Clone, Copy)]
pub struct PresenceLimits {
    /// Metas (tracking connections) per topic, on each instance.
    pub per_topic: usize,
    /// Metas under one key (a user's tabs) per topic.
    pub per_key: usize,
}

impl Default for PresenceLimits {
    fn default() -> Self {
        Self {
            per_topic: 200,
            per_key: 10,
        }
    }
}

/// Why a presence update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PresenceRefused {
    /// The topic holds as many presences as it may.
    #[error("too many presences on this channel")]
    TopicFull,
    /// This user is tracked from as many connections as allowed.
    #[error("too many presences of this user on this channel")]
    KeyFull,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn track_joins_and_retrack_replaces() {
        let mut p = Presence::default();
        let d = p.track("ada", ConnId(1), payload(json!({"status": "online"})), "i");
        assert_eq!(d.to_json()["joins"]["ada"]["metas"][0]["status"], "online");
        assert!(d.to_json()["leaves"].as_object().is_some_and(Map::is_empty));
        let d = p.track("ada", ConnId(1), payload(json!({"status": "typing"})), "i");
        assert_eq!(d.to_json()["leaves"]["ada"]["metas"][0]["status"], "online");
        assert_eq!(d.to_json()["joins"]["ada"]["metas"][0]["status"], "typing");
        let state = p.state();
        assert_eq!(state["ada"]["metas"].as_array().map(Vec::len), Some(1));
        assert!(state["ada"]["metas"][0]["phx_ref"].is_string());
    }

    #[test]
    fn two_tabs_of_one_user_share_a_key_until_both_leave() {
        let mut p = Presence::default();
        p.track("ada", ConnId(1), Map::new(), "i");
        p.track("ada", ConnId(2), Map::new(), "i");
        p.track("bob", ConnId(3), Map::new(), "i");
        assert_eq!(p.state()["ada"]["metas"].as_array().map(Vec::len), Some(2));
        let d = p.untrack(ConnId(1));
        assert_eq!(
            d.to_json()["leaves"]["ada"]["metas"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(p.len(), 2);
        p.untrack(ConnId(2));
        p.untrack(ConnId(3));
        assert!(p.is_empty());
        assert!(p.untrack(ConnId(3)).is_empty());
    }
}
