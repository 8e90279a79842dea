//! Who hears about whom on a stage (docs/protocol.md): the audience is listed to hosts and
//! co-hosts only; everyone else sees the stage and a count. Without it, every attendee is told
//! of every other attendee's arrival, changes and departure, N² messages for a live session.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{JoinOptions, Participant};
use hearth_e2e::{Keys, LOCALHOST, TestServer, eventually};
use hearth_proto::{ClientMessage, ParticipantId, Role, SessionId, SettingsChange, Shape};
use hearth_server::ServerConfig;
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn attendee(
    server: &TestServer,
    session: &SessionId,
    keys: &Keys,
    name: &str,
) -> Participant {
    let options = JoinOptions {
        receive_only: true,
        ..JoinOptions::default()
    };
    Participant::join_with(
        &server.base,
        session,
        name,
        keys.invite(),
        LOCALHOST,
        options,
    )
    .await
    .unwrap()
}

fn listed(p: &Participant) -> BTreeSet<ParticipantId> {
    p.snapshot().participants.keys().cloned().collect()
}

fn set(ids: &[&ParticipantId]) -> BTreeSet<ParticipantId> {
    ids.iter().map(|id| (*id).clone()).collect()
}

async fn set_role(host: &Participant, who: &ParticipantId, role: Role) {
    host.send(ClientMessage::SetRole {
        participant_id: who.clone(),
        role,
    })
    .await;
}

async fn set_shape(host: &Participant, shape: Shape) {
    host.send(ClientMessage::UpdateSettings {
        change: SettingsChange {
            shape: Some(shape),
            ..SettingsChange::default()
        },
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_stage_attendees_see_the_audience_as_a_count_and_hosts_see_everyone() {
    let server = TestServer::start().await;
    let (session, keys) = server
        .create_session_with(serde_json::json!({"title": "town hall", "shape": "stage"}))
        .await;
    let host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    let a = attendee(&server, &session, &keys, "Ann").await;
    let b = attendee(&server, &session, &keys, "Bob").await;
    let c = attendee(&server, &session, &keys, "Cat").await;
    let (hid, aid, bid, cid) = (
        host.id().clone(),
        a.id().clone(),
        b.id().clone(),
        c.id().clone(),
    );

    // The host lists the whole audience; each attendee the stage and a count of three.
    eventually("the host lists all three attendees", WAIT, || {
        listed(&host) == set(&[&aid, &bid, &cid])
    })
    .await;
    for who in [&a, &b, &c] {
        eventually("every attendee counts an audience of three", WAIT, || {
            who.snapshot().audience == 3
        })
        .await;
        assert_eq!(
            listed(who),
            set(&[&hid]),
            "an attendee lists the stage only"
        );
    }
    assert_eq!(
        c.snapshot().audience,
        3,
        "the last to join is counted in `joined`"
    );

    // A raised hand reaches the host, not the rest of the audience.
    b.send(ClientMessage::RaiseHand { raised: true }).await;
    eventually("the host sees Bob's hand", WAIT, || {
        host.snapshot()
            .participants
            .get(&bid)
            .is_some_and(|p| p.hand_raised)
    })
    .await;

    // One leaves: the count goes down for everyone; the host is told who.
    c.leave().await;
    eventually("the audience counts two", WAIT, || {
        a.snapshot().audience == 2 && b.snapshot().audience == 2
    })
    .await;
    eventually("the host sees Cat leave", WAIT, || {
        host.snapshot().left.contains(&cid)
    })
    .await;
    let heard = a.snapshot().heard_about;
    assert!(
        !heard.contains(&bid) && !heard.contains(&cid),
        "an attendee was told about other attendees one by one: {heard:?}"
    );
    assert!(
        a.snapshot().audience_updates >= 1,
        "counts come as `audience` messages"
    );

    // On stage, Bob appears to the audience; sent back, he is forgotten again.
    set_role(&host, &bid, Role::Speaker).await;
    eventually("Ann sees Bob on stage", WAIT, || {
        a.snapshot()
            .participants
            .get(&bid)
            .is_some_and(|p| p.role == Role::Speaker)
    })
    .await;
    eventually("the audience counts one", WAIT, || {
        a.snapshot().audience == 1
    })
    .await;
    set_role(&host, &bid, Role::Attendee).await;
    eventually("Ann no longer lists Bob", WAIT, || {
        listed(&a) == set(&[&hid])
    })
    .await;

    // Made co-host, Ann is introduced to the audience; demoted, she forgets it.
    set_role(&host, &aid, Role::Cohost).await;
    eventually("the new co-host lists Bob", WAIT, || {
        listed(&a) == set(&[&hid, &bid])
    })
    .await;
    set_role(&host, &aid, Role::Attendee).await;
    eventually("the demoted co-host lists the stage only", WAIT, || {
        listed(&a) == set(&[&hid])
    })
    .await;

    // A room: everyone hears about everyone. A stage again: attendees forget one another.
    set_shape(&host, Shape::Room).await;
    eventually("in a room Ann lists Bob", WAIT, || {
        listed(&a) == set(&[&hid, &bid])
    })
    .await;
    eventually("in a room Bob lists Ann", WAIT, || {
        listed(&b) == set(&[&hid, &aid])
    })
    .await;
    set_shape(&host, Shape::Stage).await;
    eventually("on a stage again Ann lists the host only", WAIT, || {
        listed(&a) == set(&[&hid])
    })
    .await;
    assert_eq!(
        listed(&host),
        set(&[&aid, &bid]),
        "the host still lists everyone"
    );
}

/// The traffic the rule saves, as a count a user's server would notice: with 20 attendees on
/// a stage, the last to arrive was told of no one, and the first of no one after the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attendees_arriving_are_not_announced_to_one_another() {
    // 21 participants from one address: more than the default per-address limit.
    let server = TestServer::start_with(ServerConfig {
        max_connections_per_ip: 64,
        ..ServerConfig::default()
    })
    .await;
    let (session, keys) = server
        .create_session_with(serde_json::json!({"title": "webinar", "shape": "stage"}))
        .await;
    let host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    let mut audience = Vec::new();
    for i in 0..20 {
        audience.push(attendee(&server, &session, &keys, &format!("Viewer {i}")).await);
    }
    eventually("the host lists twenty", WAIT, || {
        host.snapshot().participants.len() == 20
    })
    .await;
    eventually("the first viewer counts twenty", WAIT, || {
        audience[0].snapshot().audience == 20
    })
    .await;
    for viewer in &audience {
        let heard = viewer.snapshot().heard_about;
        assert!(heard.is_empty(), "{} heard about {heard:?}", viewer.id());
        assert_eq!(listed(viewer), set(&[host.id()]));
    }
    // Half leave at once: nobody remaining is dropped as too slow, nobody is told who.
    let leaving: Vec<Participant> = audience.drain(10..).collect();
    for viewer in leaving {
        viewer.leave().await;
    }
    eventually("the audience counts ten", WAIT, || {
        audience.iter().all(|v| v.snapshot().audience == 10)
    })
    .await;
    for viewer in &audience {
        let s = viewer.snapshot();
        assert!(!s.closed, "{} was dropped", viewer.id());
        assert!(
            s.heard_about.is_empty(),
            "{} heard about {:?}",
            viewer.id(),
            s.heard_about
        );
    }
}
