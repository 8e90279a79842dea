//! Attacks through links, each asserting "refused, nothing changed": no link, forged link,
//! rotated link, ended session, removed participant re-joining (and re-invited).

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{WAIT, refused, session, status, try_join};
use hearth_e2e::{TestServer, mint_invite};
use hearth_proto::{ClientMessage, ErrorCode, ServerMessage, SessionId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_link_or_a_forged_link_gets_nobody_in() {
    let server = TestServer::start().await;
    let (id, keys) = session(&server).await;
    refused(&server, &id, None, None, None, ErrorCode::InvalidLink).await;
    refused(
        &server,
        &id,
        None,
        Some("0123456789abcdef0123456789abcdef"),
        None,
        ErrorCode::InvalidLink,
    )
    .await;
    refused(
        &server,
        &id,
        Some(&keys.invite),
        None,
        None,
        ErrorCode::InvalidLink,
    )
    .await; // invite key as host key
    refused(
        &server,
        &id,
        None,
        Some(&keys.invite[..31]),
        None,
        ErrorCode::InvalidLink,
    )
    .await;
    refused(
        &server,
        &SessionId::from_string("nope"),
        None,
        Some(&keys.invite),
        None,
        ErrorCode::UnknownSession,
    )
    .await;
    assert_eq!(server.occupancy(&id).await.0, 0);
    assert_eq!(
        status(
            &server,
            &format!("/s/{id}?i=0123456789abcdef0123456789abcdef")
        )
        .await,
        404
    );
    assert_eq!(
        status(&server, &format!("/s/{id}?i={}", keys.invite)).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_invite_stops_working_but_people_inside_stay() {
    let server = TestServer::start().await;
    let (id, keys) = session(&server).await;
    let mut host = try_join(&server, &id, Some(&keys.host), None, None)
        .await
        .ok()
        .unwrap();
    let _guest = try_join(&server, &id, None, Some(&keys.invite), None)
        .await
        .ok()
        .unwrap();
    host.s.send(&ClientMessage::RotateInvite).await.unwrap();
    let new_url = match host
        .s
        .recv_until(WAIT, |m| matches!(m, ServerMessage::InviteRotated { .. }))
        .await
        .unwrap()
    {
        ServerMessage::InviteRotated { invite_url } => invite_url,
        _ => unreachable!(),
    };
    let new_key = new_url.split("?i=").nth(1).unwrap().to_owned();
    assert_ne!(new_key, keys.invite);
    refused(
        &server,
        &id,
        None,
        Some(&keys.invite),
        None,
        ErrorCode::InvalidLink,
    )
    .await;
    assert_eq!(
        status(&server, &format!("/s/{id}?i={}", keys.invite)).await,
        410,
        "a rotated link is gone, not unknown"
    );
    assert_eq!(server.occupancy(&id).await.0, 2, "people inside stay");
    assert!(
        try_join(&server, &id, None, Some(&new_key), None)
            .await
            .is_ok(),
        "the new link works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_closes_for_everyone_and_its_links_die() {
    let server = TestServer::start().await;
    let (id, keys) = session(&server).await;
    let mut host = try_join(&server, &id, Some(&keys.host), None, None)
        .await
        .ok()
        .unwrap();
    let mut guest = try_join(&server, &id, None, Some(&keys.invite), None)
        .await
        .ok()
        .unwrap();
    host.s.send(&ClientMessage::EndSession).await.unwrap();
    for s in [&mut host.s, &mut guest.s] {
        let m = s
            .recv_until(WAIT, |m| matches!(m, ServerMessage::Error { .. }))
            .await
            .unwrap();
        assert!(
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::SessionEnded,
                    ..
                }
            ),
            "{m:?}"
        );
        assert!(s.closed_within(WAIT).await);
    }
    refused(
        &server,
        &id,
        None,
        Some(&keys.invite),
        None,
        ErrorCode::SessionEnded,
    )
    .await;
    refused(
        &server,
        &id,
        Some(&keys.host),
        None,
        None,
        ErrorCode::SessionEnded,
    )
    .await;
    assert_eq!(
        status(&server, &format!("/s/{id}?i={}", keys.invite)).await,
        410
    );
    assert_eq!(
        status(&server, &format!("/s/{id}?k={}", keys.host)).await,
        410
    );
    assert_eq!(
        status(&server, &format!("/api/sessions/{id}?i={}", keys.invite)).await,
        410
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_participant_cannot_come_back() {
    let server = TestServer::start().await;
    let (id, keys) = session(&server).await;
    let mut host = try_join(&server, &id, Some(&keys.host), None, None)
        .await
        .ok()
        .unwrap();
    // One guest with the shared invite, one with a personal invite minted by the host.
    let minted = mint_invite(&server, &id, r#"{"role":"attendee"}"#, &keys.host).await;
    for (invite, use_token) in [(keys.invite.clone(), true), (minted, false)] {
        let mut guest = try_join(&server, &id, None, Some(&invite), None)
            .await
            .ok()
            .unwrap();
        host.s
            .send(&ClientMessage::RemoveParticipant {
                participant_id: guest.id.clone(),
            })
            .await
            .unwrap();
        let m = guest
            .s
            .recv_until(WAIT, |m| matches!(m, ServerMessage::Error { .. }))
            .await
            .unwrap();
        assert!(
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::Removed,
                    ..
                }
            ),
            "{m:?}"
        );
        assert!(guest.s.closed_within(WAIT).await);
        if use_token {
            // Coming back with the same browser (its resume token): still removed.
            refused(
                &server,
                &id,
                None,
                Some(&invite),
                Some(&guest.resume_token),
                ErrorCode::Removed,
            )
            .await;
        } else {
            // Coming back with the personal link, from anywhere: the link is revoked.
            refused(
                &server,
                &id,
                None,
                Some(&invite),
                None,
                ErrorCode::InvalidLink,
            )
            .await;
        }
    }
    assert_eq!(server.occupancy(&id).await.0, 1, "only the host is inside");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_participant_can_be_reinvited_with_a_personal_link() {
    let server = TestServer::start().await;
    let (id, keys) = session(&server).await;
    let mut host = try_join(&server, &id, Some(&keys.host), None, None)
        .await
        .ok()
        .unwrap();
    let guest = try_join(&server, &id, None, Some(&keys.invite), None)
        .await
        .ok()
        .unwrap();
    host.s
        .send(&ClientMessage::RemoveParticipant {
            participant_id: guest.id.clone(),
        })
        .await
        .unwrap();
    host.s
        .recv_until(WAIT, |m| matches!(m, ServerMessage::ParticipantLeft { .. }))
        .await
        .unwrap();
    refused(
        &server,
        &id,
        None,
        Some(&keys.invite),
        Some(&guest.resume_token),
        ErrorCode::Removed,
    )
    .await;
    // The host changes their mind and sends them a personal link.
    let personal = mint_invite(&server, &id, r#"{"role":"attendee"}"#, &keys.host).await;
    assert!(
        try_join(
            &server,
            &id,
            None,
            Some(&personal),
            Some(&guest.resume_token)
        )
        .await
        .is_ok(),
        "a re-invited person gets back in"
    );
}
