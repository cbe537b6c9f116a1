//! Several instances sharing one database, one owner per mailbox. Postgres is the only
//! coordinator: each instance has a row in `instances` whose heartbeat sets its expiry,
//! and works a mailbox only while a row in `mailbox_leases` names it and it has not
//! expired.
//!
//! **Why a mailbox is never worked by two instances at once:**
//! 1. A lease is taken only when there is none or its holder expired, and expiry is
//!    judged by the database's clock in the statements that take it
//!    (`Store::claim_leases`); the primary key makes two takers of one row serialize, so
//!    one wins.
//! 2. The holder renews its instance row each heartbeat (a fifth of `lease_ttl`), which
//!    renews every lease it holds. A renewal sent at local time `t` sets the expiry to at
//!    least `t + ttl` (the database's `now()` is later than `t`), so the holder trusts its
//!    leases until `t + ttl − margin` only. When that passes without a newer renewal
//!    (the database is unreachable, or too slow), the keeper aborts every worker at once,
//!    so they are gone before the lease could expire and be taken, and gives every lease
//!    up for good: the next renewal deletes what the database still lists under this
//!    instance instead of taking it back, since another instance may be taking it over
//!    at that very moment.
//! 3. A worker is started only for a lease held and trusted, and stopped before its lease
//!    is released (rebalancing, removal, a clean stop).
//! 4. Belt and braces: every ingest commit checks its lease inside its own transaction,
//!    FOR SHARE of the lease row, so even a worker that outlived its lease cannot commit,
//!    and a takeover (which deletes that row) waits for a commit in flight
//!    (`store::cluster::holds_lease`). The heartbeat writes only the instance's row, so it
//!    never waits for a commit: renewals that updated the lease rows themselves queued
//!    behind every slow commit, and the keeper fenced a healthy instance.
//!
//! Spreading: each heartbeat, the daemon counts the live instances and holds
//! ⌈mailboxes ÷ live⌉ at most: it releases what is over that share (stopping the workers
//! first) and claims free or expired leases up to it. An instance that dies leaves its
//! leases to expire (one `lease_ttl`); the others claim them on their next heartbeat. A
//! restarted instance on the same machine frees its dead predecessor's leases at once
//! (same host and boot, its pid no longer a collabd). A clean stop releases everything.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::seq::SliceRandom;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::store::{Store, StoreError};

/// Silent instances are forgotten after this long (their leases expired long before).
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// This instance's membership: its id, the leases it holds, and the workers those leases
/// allow.
pub struct Membership {
    store: Store,
    id: String,
    host: String,
    pid: i32,
    boot_id: String,
    ttl: Duration,
    state: Mutex<State>,
    /// Serializes the lease statements with the local bookkeeping that follows each, so a
    /// renewal's answer never undoes a claim or release made meanwhile.
    ops: tokio::sync::Mutex<()>,
}

struct State {
    /// The leases this instance holds, as the database last said.
    held: BTreeSet<String>,
    /// Until when those leases can be trusted (see the module comment, rule 2).
    valid_until: Instant,
    /// The running workers' tasks, aborted when the leases can no longer be trusted.
    workers: HashMap<String, AbortHandle>,
}

/// What one balancing round does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Leases to give up: mailboxes no longer configured, and what is over the share.
    pub release: Vec<String>,
    /// Free or expired leases to try to take, up to the share.
    pub claim: Vec<String>,
}

/// Decides a balancing round: hold at most ⌈wanted ÷ live⌉ of the wanted mailboxes.
/// `taken` are the mailboxes other instances hold unexpired leases on.
pub fn plan(
    wanted: &[String],
    held: &BTreeSet<String>,
    taken: &HashSet<String>,
    live: usize,
) -> Plan {
    let wanted_set: HashSet<&String> = wanted.iter().collect();
    let share = wanted.len().div_ceil(live.max(1));
    let mut release: Vec<String> =
        held.iter().filter(|m| !wanted_set.contains(m)).cloned().collect();
    let mine: Vec<&String> = held.iter().filter(|m| wanted_set.contains(m)).collect();
    if mine.len() > share {
        // Give up the last ones by name: a stable choice, so repeated rounds agree.
        release.extend(mine[share..].iter().map(|m| (*m).clone()));
        return Plan { release, claim: Vec::new() };
    }
    let mut free: Vec<String> =
        wanted.iter().filter(|m| !held.contains(*m) && !taken.contains(*m)).cloned().collect();
    // Instances racing for the same free leases start at different ones.
    free.shuffle(&mut rand::rng());
    free.truncate(share - mine.len());
    Plan { release, claim: free }
}

impl Membership {
    /// Registers this instance, first forgetting dead predecessors on this machine (their
    /// leases are freed at once instead of after `ttl`) and instances silent for an hour.
    pub async fn join(store: Store, ttl: Duration) -> Result<Arc<Membership>, StoreError> {
        let host = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".into());
        let boot_id = read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let pid = std::process::id() as i32;
        let suffix: String = rand::distr::SampleString::sample_string(
            &rand::distr::Alphanumeric,
            &mut rand::rng(),
            6,
        );
        let id = format!("{host}-{pid}-{}", suffix.to_lowercase());
        let dead: Vec<String> = store
            .instances_on_host(&host, &boot_id)
            .await?
            .into_iter()
            .filter(|(_, p)| *p != pid && !is_collabd(*p))
            .map(|(id, _)| id)
            .collect();
        if !dead.is_empty() {
            store.forget_instances(&dead).await?;
            info!(instances = ?dead, "forgot dead instances of this machine and their leases");
        }
        store.forget_silent_instances(FORGET_AFTER.as_secs_f64()).await?;
        let sent = Instant::now();
        store.register_instance(&id, &host, pid, &boot_id, ttl.as_secs_f64()).await?;
        info!(event = "instance_joined", instance = %id, lease_ttl = ?ttl, "instance registered");
        Ok(Arc::new(Membership {
            store,
            id,
            host,
            pid,
            boot_id,
            ttl,
            state: Mutex::new(State {
                held: BTreeSet::new(),
                valid_until: sent + ttl - ttl / 5,
                workers: HashMap::new(),
            }),
            ops: tokio::sync::Mutex::new(()),
        }))
    }

    /// This instance's id (`host-pid-random`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How often leases are renewed and the mailboxes balanced.
    pub fn heartbeat(&self) -> Duration {
        self.ttl / 5
    }

    fn margin(&self) -> Duration {
        self.ttl / 5
    }

    fn ttl_secs(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// The leases held and trusted now; empty while they cannot be trusted.
    pub fn held(&self) -> BTreeSet<String> {
        let s = self.state.lock().expect("lease state");
        if Instant::now() < s.valid_until { s.held.clone() } else { BTreeSet::new() }
    }

    /// Whether the last renewal is recent enough to trust: no lease is claimed, and no
    /// worker started, while it is not.
    pub fn trusted(&self) -> bool {
        Instant::now() < self.state.lock().expect("lease state").valid_until
    }

    /// Registers a started worker, so losing the lease aborts it. False, and the worker
    /// aborted, when the lease is gone or untrusted meanwhile.
    pub fn attach(&self, mailbox: &str, worker: AbortHandle) -> bool {
        let mut s = self.state.lock().expect("lease state");
        if Instant::now() < s.valid_until && s.held.contains(mailbox) {
            s.workers.insert(mailbox.to_owned(), worker);
            true
        } else {
            worker.abort();
            false
        }
    }

    /// Takes the free or expired leases among `mailboxes`; returns the ones taken.
    pub async fn claim(&self, mailboxes: &[String]) -> Result<Vec<String>, StoreError> {
        if mailboxes.is_empty() {
            return Ok(Vec::new());
        }
        let _op = self.ops.lock().await;
        let taken = self.store.claim_leases(&self.id, mailboxes).await?;
        let mut s = self.state.lock().expect("lease state");
        for m in &taken {
            s.held.insert(m.clone());
            info!(event = "lease_acquired", instance = %self.id, mailbox = %m, "mailbox lease acquired");
        }
        // A lease lives as long as the instance's heartbeat: `valid_until` stays.
        Ok(taken)
    }

    /// Gives leases up; their workers must have stopped.
    pub async fn release(&self, mailboxes: &[String]) -> Result<(), StoreError> {
        if mailboxes.is_empty() {
            return Ok(());
        }
        let _op = self.ops.lock().await;
        {
            let mut s = self.state.lock().expect("lease state");
            for m in mailboxes {
                s.workers.remove(m);
                if s.held.remove(m) {
                    info!(event = "lease_released", instance = %self.id, mailbox = %m, "mailbox lease released");
                }
            }
        }
        self.store.release_leases(&self.id, mailboxes).await
    }

    /// A clean stop: every worker has stopped; the instance and its leases go.
    pub async fn leave(&self) {
        let _op = self.ops.lock().await;
        let held = std::mem::take(&mut self.state.lock().expect("lease state").held);
        for m in &held {
            info!(event = "lease_released", instance = %self.id, mailbox = %m, "mailbox lease released");
        }
        match self.store.forget_instances(std::slice::from_ref(&self.id)).await {
            Ok(_) => info!(event = "instance_left", instance = %self.id, "instance unregistered"),
            Err(e) => warn!(error = %e, "cannot unregister; the leases expire by themselves"),
        }
    }

    /// Renews the heartbeat and every lease each heartbeat, and aborts every worker the
    /// moment the leases can no longer be trusted. Runs until `stop`.
    pub async fn keep(self: Arc<Self>, stop: CancellationToken) {
        let every = self.heartbeat();
        loop {
            // Armed while anything is held: a deadline already past fires at once.
            let (deadline, armed) = {
                let s = self.state.lock().expect("lease state");
                (s.valid_until, !s.held.is_empty())
            };
            let renewal = async {
                tokio::time::sleep(every).await;
                tokio::time::timeout(every, self.renew()).await
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(deadline), if armed => {
                    self.distrust("no renewal reached the database in time");
                }
                done = renewal => match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "lease renewal failed"),
                    Err(_) => warn!(timeout = ?every, "lease renewal timed out"),
                },
            }
        }
    }

    /// One renewal. Leases are only ever added by a claim: what the database still lists
    /// under this instance but it no longer trusts (given up by [`Membership::distrust`])
    /// is deleted, never taken back, since another instance may be taking it over right
    /// now; what this instance trusted but the database no longer lists is lost.
    async fn renew(&self) -> Result<(), StoreError> {
        let _op = self.ops.lock().await;
        let sent = Instant::now();
        let Some(listed) = self.store.heartbeat(&self.id, self.ttl_secs()).await? else {
            // Forgotten as dead (its heartbeat stopped for long): hold nothing, rejoin;
            // trusted again from the next renewal.
            self.distrust("this instance was forgotten by the others");
            let ttl = self.ttl_secs();
            self.store
                .register_instance(&self.id, &self.host, self.pid, &self.boot_id, ttl)
                .await?;
            warn!(instance = %self.id, "registered again");
            return Ok(());
        };
        let listed: BTreeSet<String> = listed.into_iter().collect();
        let stale: Vec<String> = {
            let s = self.state.lock().expect("lease state");
            listed.difference(&s.held).cloned().collect()
        };
        if !stale.is_empty() {
            self.store.release_leases(&self.id, &stale).await?;
            info!(mailboxes = ?stale, "released leases given up while the database was out of reach");
        }
        let mut s = self.state.lock().expect("lease state");
        let lost: Vec<String> = s.held.difference(&listed).cloned().collect();
        for m in &lost {
            if let Some(w) = s.workers.remove(m) {
                w.abort();
            }
            s.held.remove(m);
            warn!(event = "lease_lost", instance = %self.id, mailbox = %m,
                reason = "another instance holds it", "mailbox lease lost");
        }
        s.valid_until = sent + self.ttl - self.margin();
        Ok(())
    }

    /// Gives every lease up locally and aborts every worker: the leases may expire before
    /// a renewal reaches the database. Nothing is claimed until a renewal succeeds.
    fn distrust(&self, reason: &str) {
        let mut s = self.state.lock().expect("lease state");
        s.valid_until = Instant::now();
        for (_, w) in s.workers.drain() {
            w.abort();
        }
        for m in std::mem::take(&mut s.held) {
            warn!(event = "lease_lost", instance = %self.id, mailbox = %m, reason, "mailbox lease lost");
        }
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Whether `pid` is a running collabd on this machine (a reused pid is not).
fn is_collabd(pid: i32) -> bool {
    read_trimmed(&format!("/proc/{pid}/comm")).is_some_and(|c| c == "collabd")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("mb{i:02}")).collect()
    }

    #[test]
    fn one_instance_claims_everything() {
        let wanted = names(5);
        let p = plan(&wanted, &BTreeSet::new(), &HashSet::new(), 1);
        assert!(p.release.is_empty());
        let mut claim = p.claim;
        claim.sort();
        assert_eq!(claim, wanted);
    }

    #[test]
    fn a_newcomer_makes_the_others_give_up_their_excess() {
        let wanted = names(60);
        let held: BTreeSet<String> = wanted[..30].iter().cloned().collect();
        let p = plan(&wanted, &held, &wanted[30..].iter().cloned().collect(), 3);
        assert_eq!(p.release.len(), 10);
        assert!(p.claim.is_empty());
        // The newcomer takes only free leases, up to its share.
        let taken: HashSet<String> = wanted[..50].iter().cloned().collect();
        let p = plan(&wanted, &BTreeSet::new(), &taken, 3);
        assert_eq!(p.claim.len(), 10);
        assert!(p.claim.iter().all(|m| !taken.contains(m)));
    }

    #[test]
    fn mailboxes_no_longer_configured_are_released() {
        let held: BTreeSet<String> = ["gone".to_owned(), "mb00".to_owned()].into();
        let p = plan(&names(1), &held, &HashSet::new(), 1);
        assert_eq!(p.release, vec!["gone".to_owned()]);
        assert!(p.claim.is_empty());
    }

    #[test]
    fn nothing_moves_when_balanced() {
        let wanted = names(7);
        let held: BTreeSet<String> = wanted[..4].iter().cloned().collect();
        let p = plan(&wanted, &held, &wanted[4..].iter().cloned().collect(), 2);
        assert_eq!(p, Plan::default());
    }
}
