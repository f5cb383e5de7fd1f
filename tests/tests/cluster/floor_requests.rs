//! Floor calls between relays (`ptt_cluster::FloorBus`): the owner of a
//! group's lease decides every relay's requests with the group's one
//! arbiter (`ptt_floor::Floor`), as its group task does, and tells each
//! terminal on the group's news (`ptt_cluster::NewsBus`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_cluster::{
    Addressee, CallRights, FloorAction, FloorAnswer, FloorBus, FloorBusError, FloorCall,
    FloorLeases, FloorNews, HeldFloor, LeaseConfig, NewsBus, Taken,
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

/// A terminal's request for the floor, as its relay forwards it.
fn press(terminal: u32, relay: &str) -> FloorCall {
    FloorCall {
        relay: relay.to_owned(),
        terminal,
        session: 1,
        request_id: u64::from(terminal) + 1,
        rights: CallRights {
            may_talk: true,
            max_priority: u8::from(Priority::Normal),
            preemptive: false,
        },
        action: FloorAction::Request {
            priority: u8::from(Priority::Normal),
            kind: 0,
            text: String::new(),
            declares: false,
        },
    }
}

/// The owner's side: takes calls off the inbox in arrival order, decides
/// each with the group's arbiter and tells the caller on the news what it
/// decided ("granted", "queued N" or "denied"). Returns once `count`
/// calls were taken.
async fn own_the_floor(
    bus: FloorBus,
    news: NewsBus,
    held: HeldFloor,
    count: usize,
) -> anyhow::Result<HeldFloor> {
    let mut floor = Floor::new(FloorPolicy::without_timers());
    let mut inbox = bus.serve(&held).await?;
    for _ in 0..count {
        let pending = inbox.next().await.context("NATS gone")?;
        if !held.may_grant() {
            pending.answer(FloorAnswer::NotOwner).await?;
            continue;
        }
        let call = pending.call.clone();
        let who = ParticipantId(call.terminal);
        let now = Instant::now();
        floor.handle_join(now, who, MemberRights::TALKER);
        floor.handle_request(now, who, Priority::Normal, RequestKind::Normal);
        let mut said = None;
        while let Some(event) = floor.poll_event() {
            said = said.or(match event {
                Event::Granted { to, .. } if to == who => Some("granted".to_owned()),
                Event::Queued {
                    who: queued,
                    position,
                    ..
                } if queued == who => Some(format!("queued {position}")),
                Event::Denied { who: denied, .. } if denied == who => Some("denied".to_owned()),
                _ => None,
            });
        }
        let said = said.context("the arbiter said nothing to the requester")?;
        pending.answer(FloorAnswer::Accepted).await?;
        let message = FloorNews {
            relay: RELAYS[0].to_owned(),
            token: held.token(),
            gate: None,
            valid_ms: None,
            to: Some(Addressee {
                terminal: call.terminal,
                session: call.session,
            }),
            message: said.into_bytes(),
            taken: Vec::new(),
        };
        news.publish(GROUP, &message).await?;
    }
    Ok(held)
}

/// 100 terminals spread over three relays press at once: the owner (relay
/// A) grants exactly one and queues the other 99 at positions 1 to 99, each
/// once, every reply carries A's fencing token, and the news reaches every
/// terminal under it.
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
    // What a relay with members hears of the owner's decisions.
    let mut heard = NewsBus::new(connect(&nats).await?, "observer")
        .subscribe(GROUP)
        .await?;
    let owner = tokio::spawn(own_the_floor(
        FloorBus::new(owner_client.clone()),
        NewsBus::new(owner_client, RELAYS[0]),
        held,
        TERMINALS as usize,
    ));

    let mut buses = Vec::new();
    for _ in RELAYS {
        buses.push(FloorBus::new(connect(&nats).await?));
    }
    // The owner listens once a call gets a reply; "no owner" until then.
    let probe = press(0, RELAYS[1]);
    let mut first = None;
    let until = Instant::now() + Duration::from_secs(5);
    while first.is_none() {
        match buses[1].call(GROUP, &probe, ANSWER_WITHIN).await {
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
            let call = press(terminal, RELAYS[relay]);
            (terminal, bus.call(GROUP, &call, ANSWER_WITHIN).await)
        });
    }
    while let Some(done) = presses.join_next().await {
        let (terminal, reply) = done?;
        replies.push((terminal, reply?));
    }
    owner.await??;

    let mut told = Vec::new();
    while told.len() < TERMINALS as usize {
        let news = tokio::time::timeout(ANSWER_WITHIN, heard.next())
            .await
            .context("news stopped")?
            .context("NATS gone")?;
        ensure!(
            news.token == token,
            "news under token {} not {token}",
            news.token
        );
        let to = news.to.context("news for nobody")?;
        told.push((to.terminal, String::from_utf8(news.message)?));
    }
    let terminals: BTreeSet<u32> = told.iter().map(|(t, _)| *t).collect();
    let granted: Vec<u32> = told
        .iter()
        .filter(|(_, said)| said == "granted")
        .map(|(t, _)| *t)
        .collect();
    let places: BTreeSet<u32> = told
        .iter()
        .filter_map(|(_, said)| said.strip_prefix("queued ")?.parse().ok())
        .collect();
    ensure!(
        terminals.len() == TERMINALS as usize,
        "news for {} terminals",
        terminals.len()
    );
    ensure!(granted.len() == 1, "granted to {granted:?}");
    ensure!(
        places == (1..TERMINALS).collect(),
        "queue places not 1..=99 once each: {} distinct",
        places.len(),
    );
    ensure!(
        replies
            .iter()
            .all(|(_, r)| r.token == token && r.answer == FloorAnswer::Accepted),
        "a reply under another token than {token}, or not accepted"
    );
    Ok(())
}

/// Nobody owns a group's floor: a request says so at once, not after a
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_a_floor_nobody_owns_is_told_at_once() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let bus = FloorBus::new(connect(&nats).await?);
    let asked = Instant::now();
    match bus.call(GROUP, &press(1, "relay-b"), ANSWER_WITHIN).await {
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
