//! The generator's threads, so that what it measures is the relay and not
//! itself: each receive lane is an OS thread with a single-threaded runtime
//! holding a share of the listeners, each listener on a socket of its own
//! that the kernel stamps arrivals on ([`stamp`]); the talkers (and the
//! late entrants) have a thread of their own. A busy lane never delays a
//! talker's frame, nor (thanks to the kernel's stamps) a listener's
//! arrival time; each thread's CPU is measured and reported.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use ptt_client::Client;
use ptt_proto::pb;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;

use super::cpu::{ThreadCpu, ThreadMeter};
use super::listener::listen;
use super::probe::Probe;
use super::scenario::Scenario;
use super::stamp::{self, Arrivals};
use super::target::{Target, client_config};
use super::tasks;
use super::totals::Totals;

/// Terminals per client endpoint (one UDP socket each).
const TERMINALS_PER_ENDPOINT: usize = 64;
/// Log-ins in flight at once, per thread.
const CONCURRENT_LOGINS: usize = 32;
/// Tries of one terminal's log-in before the run fails. A radio tries
/// again after a log-in that timed out or was refused for now, and so does
/// the generator (counted in the report): one handshake lost on a saturated
/// machine must not end a 10,000-terminal run.
const LOGIN_ATTEMPTS: u32 = 3;
/// Wait before the first retry of a log-in; doubled for the next.
const LOGIN_BACKOFF: Duration = Duration::from_millis(500);
/// Time left for frames in flight after the last burst.
const DRAIN: Duration = Duration::from_millis(500);
/// How long a thread's endpoints may take, all together, to close their
/// connections at the end (the relay may be gone already).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Resolves once a generator thread has ended and its sockets are closed.
pub(super) type Finished = oneshot::Receiver<()>;

/// A terminal a lane logged in, as the plan needs it.
#[derive(Debug, Clone)]
pub(super) struct LoggedIn {
    pub(super) id: u32,
    pub(super) groups: Vec<pb::GroupInfo>,
}

/// What a lane is told once the plan is made.
pub(super) struct LaneStart {
    /// Terminals that talk: logged in again on the talker thread, so the
    /// lane closes its own sessions of them.
    pub(super) talkers: HashSet<u32>,
    /// Listener → the group it plays out for real.
    pub(super) probes: HashMap<u32, u32>,
    /// True once the talkers talk: the lane's CPU is measured from then.
    pub(super) talking: watch::Receiver<bool>,
    /// True when the run is over.
    pub(super) stop: watch::Receiver<bool>,
}

/// The coordinator's handle on one receive lane.
pub(super) struct Lane {
    logged_in: oneshot::Receiver<anyhow::Result<Vec<LoggedIn>>>,
    start: oneshot::Sender<LaneStart>,
    done: oneshot::Receiver<Option<ThreadCpu>>,
    finished: Finished,
    /// What the lane's listeners counted.
    pub(super) totals: Arc<Totals>,
}

impl Lane {
    /// Starts lane `index`, which logs `terminals` in at once.
    pub(super) fn spawn(
        index: usize,
        target: Target,
        terminals: Vec<(u32, String)>,
    ) -> anyhow::Result<Self> {
        let (logged_in_tx, logged_in) = oneshot::channel();
        let (start, start_rx) = oneshot::channel::<LaneStart>();
        let (done_tx, done) = oneshot::channel();
        let totals = Arc::new(Totals::new());
        let lane_totals = totals.clone();
        let finished = run_thread(format!("ptt-load-rx{index}"), async move {
            // One endpoint per listener, its socket stamping arrivals.
            let stamped: Result<Vec<_>, _> = terminals
                .iter()
                .map(|_| stamp::stamping_endpoint())
                .collect();
            let (endpoints, arrivals): (Vec<_>, Vec<_>) = match stamped {
                Ok(stamped) => stamped.into_iter().unzip(),
                Err(error) => {
                    let _ = logged_in_tx
                        .send(Err(anyhow::Error::from(error)
                            .context("cannot bind a listener's UDP socket")));
                    return;
                }
            };
            let clients = match login_all(&target, &terminals, &endpoints, &lane_totals).await {
                Ok(clients) => clients,
                Err(error) => {
                    let _ = logged_in_tx.send(Err(error));
                    return;
                }
            };
            let logged = clients
                .iter()
                .map(|c| LoggedIn {
                    id: c.terminal_id(),
                    groups: c.groups(),
                })
                .collect();
            let _ = logged_in_tx.send(Ok(logged));
            // The coordinator gave up (another lane failed): nothing to do.
            let Ok(start) = start_rx.await else { return };
            let cpu = receive(clients, arrivals, start, lane_totals).await;
            let _ = done_tx.send(cpu);
            let closing = tokio::time::Instant::now() + CLOSE_GRACE;
            for endpoint in &endpoints {
                let _ = tokio::time::timeout_at(closing, endpoint.wait_idle()).await;
            }
        })?;
        Ok(Self {
            logged_in,
            start,
            done,
            finished,
            totals,
        })
    }

    /// Waits until the lane's terminals are logged in.
    pub(super) async fn logged_in(&mut self) -> anyhow::Result<Vec<LoggedIn>> {
        (&mut self.logged_in)
            .await
            .context("a receive lane ended during log-in")?
    }

    /// Lets the lane's listeners listen; returns the handle that says,
    /// after the stop, what the lane's thread used.
    /// The second handle resolves once the thread has ended.
    pub(super) fn start(
        self,
        start: LaneStart,
    ) -> (oneshot::Receiver<Option<ThreadCpu>>, Finished) {
        let _ = self.start.send(start);
        (self.done, self.finished)
    }
}

/// Runs a lane's listeners until the stop; the lane thread's CPU from the
/// moment the talkers talk.
async fn receive(
    clients: Vec<Client>,
    arrivals: Vec<Arc<Arrivals>>,
    start: LaneStart,
    totals: Arc<Totals>,
) -> Option<ThreadCpu> {
    let LaneStart {
        talkers,
        probes,
        mut talking,
        stop,
    } = start;
    let mut listeners = JoinSet::new();
    for (client, arrivals) in clients.into_iter().zip(arrivals) {
        if talkers.contains(&client.terminal_id()) {
            // Not awaited here: the other listeners must not wait for it.
            tokio::spawn(async move { client.close().await });
            continue;
        }
        let probe = match probes.get(&client.terminal_id()) {
            Some(&group) => Probe::new(group).ok(),
            None => None,
        };
        listeners.spawn(listen(
            client,
            totals.clone(),
            stop.clone(),
            probe,
            Some(arrivals),
        ));
    }
    let _ = talking.wait_for(|t| *t).await;
    let measured = ThreadMeter::start();
    while listeners.join_next().await.is_some() {}
    measured.finish()
}

/// What the talker thread is given.
pub(super) struct TalkPlan {
    /// Each talk group with its talkers, who take turns.
    pub(super) groups: Vec<(u32, Vec<(u32, String)>)>,
    /// Terminals kept back to log in during bursts.
    pub(super) late: Vec<(u32, String)>,
    /// Every group's members as the relay told them.
    pub(super) members: Arc<BTreeMap<u32, BTreeSet<u32>>>,
    /// The Opus packets every talker replays.
    pub(super) packets: Arc<Vec<Bytes>>,
}

/// The talker thread as the coordinator sees it.
pub(super) struct Talkers {
    /// Sent once the talkers are logged in and about to talk.
    pub(super) talking: oneshot::Receiver<anyhow::Result<()>>,
    /// Sent after the last burst and the drain: the thread's CPU.
    pub(super) done: oneshot::Receiver<Option<ThreadCpu>>,
    /// Resolves once the thread has ended.
    pub(super) finished: Finished,
    /// What the talkers (and their own listening) counted.
    pub(super) totals: Arc<Totals>,
}

impl Talkers {
    /// Starts the talker thread: it logs the talkers in on its own socket,
    /// says so, talks for `scenario.duration`, waits out the drain and
    /// stops its listeners at `stop`.
    pub(super) fn spawn(
        target: Target,
        plan: TalkPlan,
        scenario: Scenario,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let (talking_tx, talking) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let totals = Arc::new(Totals::new());
        let thread_totals = totals.clone();
        let finished = run_thread("ptt-load-talk".to_owned(), async move {
            let totals = thread_totals;
            let endpoint = match endpoints(1) {
                Ok(mut endpoints) => endpoints.remove(0),
                Err(error) => {
                    let _ = talking_tx.send(Err(error));
                    return;
                }
            };
            let all: Vec<(u32, String)> = plan.groups.iter().flat_map(|(_, t)| t.clone()).collect();
            let clients =
                match login_all(&target, &all, std::slice::from_ref(&endpoint), &totals).await {
                    Ok(clients) => clients,
                    Err(error) => {
                        let _ = talking_tx.send(Err(error));
                        return;
                    }
                };
            let by_id: HashMap<u32, Client> = clients
                .iter()
                .map(|c| (c.terminal_id(), c.clone()))
                .collect();
            // Talkers hear the other groups they are members of.
            let mut listeners = JoinSet::new();
            for client in &clients {
                listeners.spawn(listen(
                    client.clone(),
                    totals.clone(),
                    stop.clone(),
                    None,
                    None,
                ));
            }
            let _ = talking_tx.send(Ok(()));
            let measured = ThreadMeter::start();
            let deadline = Instant::now() + scenario.duration;
            let mut talks = JoinSet::new();
            for (i, (group, talkers)) in plan.groups.iter().enumerate() {
                let talkers: Vec<Client> = talkers
                    .iter()
                    .filter_map(|(id, _)| by_id.get(id).cloned())
                    .collect();
                talks.spawn(tasks::talk_in_turns(
                    *group,
                    talkers,
                    plan.members.clone(),
                    plan.packets.clone(),
                    i * 37,
                    scenario.fps,
                    deadline,
                    totals.clone(),
                ));
            }
            if !plan.late.is_empty() {
                talks.spawn(tasks::late_entries(
                    target.clone(),
                    plan.late.clone(),
                    endpoint.clone(),
                    deadline,
                    totals.clone(),
                ));
            }
            while talks.join_next().await.is_some() {}
            tokio::time::sleep(DRAIN).await;
            let _ = done_tx.send(measured.finish());
            while listeners.join_next().await.is_some() {}
            drop(clients);
            drop(by_id);
            let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
        })?;
        Ok(Self {
            talking,
            done,
            finished,
            totals,
        })
    }
}

/// Runs `work` on a new OS thread with a single-threaded runtime of its own;
/// the handle resolves once the thread has dropped that runtime.
fn run_thread(
    name: String,
    work: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Finished> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build a load generator runtime")?;
    let (finished_tx, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            runtime.block_on(work);
            // Its tasks, and with them the sockets, go with the runtime.
            drop(runtime);
            let _ = finished_tx.send(());
        })
        .context("cannot start a load generator thread")?;
    Ok(finished)
}

/// Client endpoints for `terminals`, [`TERMINALS_PER_ENDPOINT`] each; made
/// inside the runtime that will drive them.
fn endpoints(terminals: usize) -> anyhow::Result<Vec<quinn::Endpoint>> {
    (0..terminals.div_ceil(TERMINALS_PER_ENDPOINT).max(1))
        .map(|_| {
            quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
                .context("cannot bind a client UDP socket")
        })
        .collect()
}

/// Logs every terminal in, a bounded number at a time, spread over
/// `endpoints`; a log-in that fails for now is retried (counted in
/// `totals`), up to [`LOGIN_ATTEMPTS`] tries.
async fn login_all(
    target: &Target,
    terminals: &[(u32, String)],
    endpoints: &[quinn::Endpoint],
    totals: &Arc<Totals>,
) -> anyhow::Result<Vec<Client>> {
    let permits = Arc::new(Semaphore::new(CONCURRENT_LOGINS));
    let mut set = JoinSet::new();
    for (i, (id, secret)) in terminals.iter().enumerate() {
        let config = client_config(target, *id, secret);
        let endpoint = endpoints[i % endpoints.len()].clone();
        let permits = permits.clone();
        let totals = totals.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let mut backoff = LOGIN_BACKOFF;
            let mut attempt = 1;
            let result = loop {
                match Client::connect_with_endpoint(config.clone(), endpoint.clone()).await {
                    Err(error) if error.is_transient() && attempt < LOGIN_ATTEMPTS => {
                        totals.login_retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        attempt += 1;
                    }
                    result => break result,
                }
            };
            (i, result)
        });
    }
    let mut clients: Vec<Option<Client>> = vec![None; terminals.len()];
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.context("log-in task failed")?;
        let client =
            result.with_context(|| format!("log-in of terminal {} failed", terminals[i].0))?;
        clients[i] = Some(client);
    }
    Ok(clients.into_iter().flatten().collect())
}
