//! Floor requests between relays (`ptt_cluster::FloorBus`): the owner of a
//! group's lease decides every relay's requests with the group's one
//! arbiter (`ptt_floor::Floor`), as its group task will.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_cluster::{
    FloorAnswer, FloorBus, FloorBusError, FloorLeases, FloorRequest, HeldFloor, LeaseConfig, Taken,
};
use ptt_floor::{Event, Floor, FloorPolicy, MemberRights, ParticipantId, Priority, RequestKind};
use ptt_tests::nats::NatsServer;

const GROUP: u32 = 11;
const TERMINALS: u32 = 100;
const RELAYS: [&str; 3] = ["relay-a", "relay-b", "relay-c"];
/// How long a relay waits for the owner's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

async fn connect(nats: &NatsServer) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::connect(nats.url()).await?)
}

/// The owner's side: takes requests off the inbox in arrival order and
/// decides each with the group's arbiter, answering with its decision.
/// Returns once `count` requests were answered.
async fn own_the_floor(bus: FloorBus, held: HeldFloor, count: usize) -> anyhow::Result<HeldFloor> {
    let mut floor = Floor::new(FloorPolicy::without_timers());
    let now = Instant::now();
    for terminal in 0..TERMINALS {
        floor.handle_join(now, ParticipantId(terminal), MemberRights::TALKER);
    }
    let mut inbox = bus.serve(&held).await?;
    for _ in 0..count {
        let pending = inbox.next().await.context("NATS gone")?;
        if !held.may_grant() {
            pending.answer(FloorAnswer::NotOwner).await?;
            continue;
        }
        let who = ParticipantId(pending.request.terminal);
        let priority = Priority::try_from(pending.request.priority).unwrap_or(Priority::Normal);
        floor.handle_request(Instant::now(), who, priority, RequestKind::Normal);
        let mut answer = None;
        while let Some(event) = floor.poll_event() {
            answer = answer.or(match event {
                Event::Granted { to, burst, .. } if to == who => {
                    Some(FloorAnswer::Granted { burst: burst.0 })
                }
                Event::Queued {
                    who: queued,
                    position,
                    ..
                } if queued == who => Some(FloorAnswer::Queued { position }),
                Event::Denied {
                    who: denied,
                    reason,
                } if denied == who => Some(FloorAnswer::Denied {
                    reason: format!("{reason:?}"),
                }),
                _ => None,
            });
        }
        pending
            .answer(answer.context("the arbiter said nothing to the requester")?)
            .await?;
    }
    Ok(held)
}

/// 100 terminals spread over three relays press at once: the owner (relay
/// A) grants exactly one and queues the other 99 at positions 1 to 99, each
/// once, and every answer carries A's fencing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_presses_over_three_relays_get_one_grant_and_ninety_nine_places()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let owner_client = connect(&nats).await?;
    let leases = FloorLeases::open(
        &async_nats::jetstream::new(owner_client.clone()),
        RELAYS[0],
        LeaseConfig::default(),
    )
    .await?;
    let Taken::Owned(lease) = leases.take(GROUP).await? else {
        anyhow::bail!("relay a could not take a free floor");
    };
    let token = lease.token();
    let held = HeldFloor::keep(leases, lease);
    let owner = tokio::spawn(own_the_floor(
        FloorBus::new(owner_client),
        held,
        TERMINALS as usize,
    ));

    let mut buses = Vec::new();
    for _ in RELAYS {
        buses.push(FloorBus::new(connect(&nats).await?));
    }
    // The owner listens once a request gets an answer; "no owner" until then.
    let probe = FloorRequest {
        terminal: 0,
        priority: u8::from(Priority::Normal),
        relay: RELAYS[1].to_owned(),
    };
    let mut first = None;
    let until = Instant::now() + Duration::from_secs(5);
    while first.is_none() {
        match buses[1].request(GROUP, &probe, ANSWER_WITHIN).await {
            Ok(reply) => first = Some(reply),
            Err(FloorBusError::NoOwner { .. }) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut replies = vec![(0, first.context("first reply")?)];

    let mut presses = tokio::task::JoinSet::new();
    for terminal in 1..TERMINALS {
        let relay = (terminal % 3) as usize;
        let bus = buses[relay].clone();
        presses.spawn(async move {
            let request = FloorRequest {
                terminal,
                priority: u8::from(Priority::Normal),
                relay: RELAYS[relay].to_owned(),
            };
            (terminal, bus.request(GROUP, &request, ANSWER_WITHIN).await)
        });
    }
    while let Some(done) = presses.join_next().await {
        let (terminal, reply) = done?;
        replies.push((terminal, reply?));
    }
    owner.await??;

    let granted: Vec<u32> = replies
        .iter()
        .filter(|(_, r)| matches!(r.answer, FloorAnswer::Granted { .. }))
        .map(|(t, _)| *t)
        .collect();
    let places: BTreeSet<u32> = replies
        .iter()
        .filter_map(|(_, r)| match r.answer {
            FloorAnswer::Queued { position } => Some(position),
            _ => None,
        })
        .collect();
    ensure!(granted.len() == 1, "granted to {granted:?}");
    ensure!(
        places == (1..TERMINALS).collect(),
        "queue places not 1..=99 once each: {} distinct of {}",
        places.len(),
        replies.len() - 1
    );
    ensure!(
        replies.iter().all(|(_, r)| r.token == token),
        "an answer under another token than {token}"
    );
    Ok(())
}

/// Nobody owns a group's floor: a request says so at once, not after a
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_a_floor_nobody_owns_is_told_at_once() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let bus = FloorBus::new(connect(&nats).await?);
    let request = FloorRequest {
        terminal: 1,
        priority: u8::from(Priority::Normal),
        relay: "relay-b".to_owned(),
    };
    let asked = Instant::now();
    match bus.request(GROUP, &request, ANSWER_WITHIN).await {
        Err(FloorBusError::NoOwner { group }) => assert_eq!(group, GROUP),
        other => anyhow::bail!("a floor nobody owns answered {other:?}"),
    }
    ensure!(
        asked.elapsed() < ANSWER_WITHIN / 4,
        "took {:?}",
        asked.elapsed()
    );
    Ok(())
}
