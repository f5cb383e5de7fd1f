//! Floor leases (`ptt_cluster::FloorLeases`) between relays, each its own
//! NATS connection, as separate `pttd` processes would be.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_cluster::{FloorLeases, HeldFloor, Lease, LeaseConfig, LeaseError, Taken};
use ptt_tests::PATIENCE;
use ptt_tests::nats::NatsServer;

/// Short leases, so expiry tests take a second or two.
const CONFIG: LeaseConfig = LeaseConfig {
    ttl: Duration::from_millis(1000),
    margin: Duration::from_millis(200),
};

/// The group the tests fight over.
const GROUP: u32 = 11;

/// Relay `name`'s leases, over a connection of its own.
async fn relay(nats: &NatsServer, name: &str) -> anyhow::Result<FloorLeases> {
    let client = async_nats::connect(nats.url()).await?;
    let jetstream = async_nats::jetstream::new(client);
    Ok(FloorLeases::open(&jetstream, name, CONFIG).await?)
}

fn owned(taken: Taken) -> anyhow::Result<Lease> {
    match taken {
        Taken::Owned(lease) => Ok(lease),
        Taken::Held(holder) => anyhow::bail!("held by {holder:?}"),
    }
}

/// Takes `group` on `relay`, trying every 20 ms until it is owned; returns
/// the lease and when it was taken.
async fn take_when_free(relay: &FloorLeases, group: u32) -> anyhow::Result<(Lease, Instant)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Taken::Owned(lease) = relay.take(group).await? {
            return Ok((lease, Instant::now()));
        }
        ensure!(Instant::now() < deadline, "group {group} never came free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Thirty takes of one group at once, from three relays: exactly one owns
/// it, and the other 29 are told who, with its fencing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_many_simultaneous_takes_owns_the_floor() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let relays = [
        relay(&nats, "relay-a").await?,
        relay(&nats, "relay-b").await?,
        relay(&nats, "relay-c").await?,
    ];
    let mut takes = tokio::task::JoinSet::new();
    for n in 0..30 {
        let relay = relays[n % 3].clone();
        takes.spawn(async move { (relay.relay().to_owned(), relay.take(GROUP).await) });
    }
    let mut owners = Vec::new();
    let mut holders = Vec::new();
    while let Some(result) = takes.join_next().await {
        let (name, taken) = result?;
        match taken? {
            Taken::Owned(lease) => owners.push((name, lease)),
            Taken::Held(holder) => holders.push(holder),
        }
    }
    ensure!(owners.len() == 1, "{} owners: {owners:?}", owners.len());
    let (owner, lease) = &owners[0];
    ensure!(
        holders
            .iter()
            .all(|h| &h.relay == owner && h.token == lease.token()),
        "holders disagree with the owner {owner} (token {}): {holders:?}",
        lease.token()
    );
    assert_eq!(holders.len(), 29);
    Ok(())
}

/// The owner keeps its floor by renewing, past several lifetimes; when it
/// stops (a crash), the floor comes free only after the owner's own
/// deadline, and the next owner's fencing token is higher. The dead owner's
/// late renewal is refused as lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floor_moves_only_after_its_owner_stopped_renewing_and_its_lease_ran_out()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (a, b) = (
        relay(&nats, "relay-a").await?,
        relay(&nats, "relay-b").await?,
    );
    let mut lease = owned(a.take(GROUP).await?)?;
    let first_token = lease.token();

    let renewing_until = Instant::now() + CONFIG.ttl * 3;
    while Instant::now() < renewing_until {
        tokio::time::sleep(CONFIG.renew_every()).await;
        a.renew(&mut lease).await?;
        let holder = match b.take(GROUP).await? {
            Taken::Held(holder) => holder,
            Taken::Owned(stolen) => anyhow::bail!("b took a renewed floor: {stolen:?}"),
        };
        assert_eq!(holder.relay, "relay-a");
        assert_eq!(holder.token, first_token, "renewals keep the token");
    }

    // a stops renewing, as if it had died.
    let deadline = lease.valid_until();
    let (taken, at) = take_when_free(&b, GROUP).await?;
    ensure!(
        at >= deadline,
        "b took the floor {:?} before a's own deadline",
        deadline - at
    );
    ensure!(!lease.may_grant(at), "a would still grant when b took over");
    ensure!(
        taken.token() > first_token,
        "the new owner's token {} is not above {first_token}",
        taken.token()
    );
    println!(
        "floor moved {:?} after the owner's deadline (ttl {:?}, margin {:?})",
        at - deadline,
        CONFIG.ttl,
        CONFIG.margin
    );
    match a.renew(&mut lease).await {
        Err(LeaseError::Lost { group }) => assert_eq!(group, GROUP),
        other => anyhow::bail!("a's late renewal: {other:?}"),
    }
    ensure!(!lease.may_grant(Instant::now()));
    Ok(())
}

/// A released floor is free at once, for a relay that asks next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_floor_is_free_at_once() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (a, b) = (
        relay(&nats, "relay-a").await?,
        relay(&nats, "relay-b").await?,
    );
    let lease = owned(a.take(GROUP).await?)?;
    let first_token = lease.token();
    a.release(lease).await?;
    let released = Instant::now();
    let taken = owned(b.take(GROUP).await?)?;
    ensure!(
        released.elapsed() < CONFIG.ttl / 2,
        "taking a released floor took {:?}",
        released.elapsed()
    );
    assert!(taken.token() > first_token);
    assert_eq!(b.holder(GROUP).await?.context("a holder")?.relay, "relay-b");
    // Another group is independent.
    owned(a.take(GROUP + 1).await?)?;
    Ok(())
}

/// NATS dies under the owner: its renewals fail, it stops granting at its
/// deadline, and after NATS restarts (its store on disk) no relay gets the
/// floor before that deadline either: the restart did not forget the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_cut_off_from_nats_stops_granting_before_anyone_else_can_take_over()
-> anyhow::Result<()> {
    let mut nats = NatsServer::start().await?;
    let (a, b) = (
        relay(&nats, "relay-a").await?,
        relay(&nats, "relay-b").await?,
    );
    let mut lease = owned(a.take(GROUP).await?)?;
    let deadline = lease.valid_until();
    nats.kill().await?;
    match tokio::time::timeout(CONFIG.ttl, a.renew(&mut lease)).await {
        Ok(Err(LeaseError::Unavailable(_))) | Err(_) => {}
        other => anyhow::bail!("a renewal without NATS: {other:?}"),
    }
    assert_eq!(
        lease.valid_until(),
        deadline,
        "a failed renewal extends nothing"
    );
    nats.restart().await?;
    let (taken, at) = take_when_free(&b, GROUP).await?;
    ensure!(
        at >= deadline,
        "b took the floor {:?} before a's deadline, across a NATS restart",
        deadline - at
    );
    ensure!(!lease.may_grant(at));
    ensure!(taken.token() > lease.token());
    Ok(())
}

/// A kept floor ([`HeldFloor`]) stays with its relay for many lifetimes;
/// released, it is free at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_floor_stays_until_released() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (a, b) = (
        relay(&nats, "relay-a").await?,
        relay(&nats, "relay-b").await?,
    );
    let held = HeldFloor::keep(a.clone(), owned(a.take(GROUP).await?)?);
    let until = Instant::now() + CONFIG.ttl * 4;
    while Instant::now() < until {
        ensure!(held.may_grant(), "a kept floor stopped being grantable");
        ensure!(
            matches!(b.take(GROUP).await?, Taken::Held(ref h) if h.relay == "relay-a"),
            "b took a kept floor"
        );
        tokio::time::sleep(CONFIG.ttl / 5).await;
    }
    let token = held.token();
    held.release().await;
    let taken = owned(b.take(GROUP).await?)?;
    ensure!(taken.token() > token);
    Ok(())
}

/// NATS goes away for longer than a lease lives: the kept floor stops being
/// grantable at its deadline on its own, and when NATS is back (and the
/// lease has run out meanwhile) the keeper finds it lost and never takes it
/// back: the group must take the floor anew, under a new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_floor_that_ran_out_during_an_outage_is_lost_not_resumed() -> anyhow::Result<()> {
    let mut nats = NatsServer::start().await?;
    let a = relay(&nats, "relay-a").await?;
    let mut held = HeldFloor::keep(a.clone(), owned(a.take(GROUP).await?)?);
    nats.kill().await?;
    let killed = Instant::now();
    let deadline = Instant::now() + PATIENCE;
    while held.may_grant() {
        ensure!(Instant::now() < deadline, "still granting without NATS");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped_after = killed.elapsed();
    ensure!(
        stopped_after <= CONFIG.ttl,
        "granting went on {stopped_after:?} after NATS died"
    );
    // Out for longer than the lease lives, then back.
    tokio::time::sleep(CONFIG.ttl * 2).await;
    nats.restart().await?;
    tokio::time::timeout(PATIENCE, held.lost())
        .await
        .context("the keeper never noticed its lease ran out")?;
    ensure!(!held.may_grant());
    println!("without NATS, the kept floor stopped {stopped_after:?} after the kill");
    Ok(())
}
