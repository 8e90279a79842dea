//! Who may do what. The one place a permission is decided: the server asks here before every
//! action, and the web client only hides buttons.

use hearth_proto::{Role, Shape};

/// Everything a participant can try to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send camera, microphone or screen.
    Publish,
    /// Send a chat message.
    Chat,
    /// Raise or lower one's own hand.
    RaiseHand,
    /// Turn someone else's microphone or camera off.
    Mute,
    /// Remove someone from the session.
    Remove,
    /// Give someone a role.
    SetRole(Role),
    /// Change shape, lock, waiting room.
    UpdateSettings,
    /// Replace the invite link.
    RotateInvite,
    /// Admit or decline people in the waiting room.
    Admit,
    /// End the session for everyone.
    End,
    /// Start or stop recording the session.
    Record,
}

/// Every action, for exhaustive tests and documentation.
pub const ALL_ACTIONS: [Action; 14] = [
    Action::Publish,
    Action::Chat,
    Action::RaiseHand,
    Action::Mute,
    Action::Remove,
    Action::SetRole(Role::Host),
    Action::SetRole(Role::Cohost),
    Action::SetRole(Role::Speaker),
    Action::SetRole(Role::Attendee),
    Action::UpdateSettings,
    Action::RotateInvite,
    Action::Admit,
    Action::End,
    Action::Record,
];

/// Rank for acting on others: you may only mute, remove or re-role someone ranked below you.
fn rank(role: Role) -> u8 {
    match role {
        Role::Host => 3,
        Role::Cohost => 2,
        Role::Speaker | Role::Attendee => 1,
    }
}

/// Whether `role` may take `action` in a session of `shape` (without a target).
pub fn allowed(role: Role, shape: Shape, action: Action) -> bool {
    let runs_session = matches!(role, Role::Host | Role::Cohost);
    match action {
        Action::Publish => match shape {
            Shape::Room => true,
            Shape::Stage => role != Role::Attendee,
        },
        Action::Chat => true,
        // A hand means "let me speak": only meaningful for people who cannot publish yet.
        Action::RaiseHand => role == Role::Attendee,
        Action::Mute | Action::Remove | Action::UpdateSettings | Action::Admit => runs_session,
        Action::RotateInvite => runs_session,
        // Recording is a decision about everyone's image and voice: people who run the
        // session make it, and everyone sees that it is on.
        Action::Record => runs_session,
        // Nobody becomes host by promotion: host is whoever holds the host link. Only a host
        // makes co-hosts; co-hosts bring people on and off stage.
        Action::SetRole(Role::Host) => false,
        Action::SetRole(Role::Cohost) => role == Role::Host,
        Action::SetRole(Role::Speaker | Role::Attendee) => runs_session,
        Action::End => role == Role::Host,
    }
}

/// Whether `actor` may take `action` on someone whose role is `target` (mute, remove, set role).
pub fn allowed_on(actor: Role, target: Role, shape: Shape, action: Action) -> bool {
    allowed(actor, shape, action) && rank(actor) > rank(target)
}

/// Whether someone whose role is `viewer` is told, one by one, of the arrival, changes and
/// departure of someone whose role is `subject`. A stage session's audience may be thousands:
/// telling each attendee about every other would be N² messages (and N² rows nobody reads).
/// So in a stage session the audience is listed only to the people who run it (who admit,
/// promote and remove); everyone else sees the stage and the audience's size as a count.
pub fn hears_about(viewer: Role, subject: Role, shape: Shape) -> bool {
    shape == Shape::Room || matches!(viewer, Role::Host | Role::Cohost) || subject != Role::Attendee
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 4] = [Role::Host, Role::Cohost, Role::Speaker, Role::Attendee];

    #[test]
    fn on_a_stage_only_those_who_run_it_hear_about_each_attendee() {
        for viewer in ROLES {
            for subject in ROLES {
                assert!(
                    hears_about(viewer, subject, Shape::Room),
                    "{viewer:?} {subject:?}"
                );
                let expected =
                    matches!(viewer, Role::Host | Role::Cohost) || subject != Role::Attendee;
                assert_eq!(
                    hears_about(viewer, subject, Shape::Stage),
                    expected,
                    "{viewer:?} {subject:?}"
                );
            }
        }
        assert!(!hears_about(Role::Attendee, Role::Attendee, Shape::Stage));
        assert!(!hears_about(Role::Speaker, Role::Attendee, Shape::Stage));
        assert!(hears_about(Role::Attendee, Role::Speaker, Shape::Stage));
        assert!(hears_about(Role::Cohost, Role::Attendee, Shape::Stage));
    }

    #[test]
    fn attendees_can_only_chat_raise_a_hand_and_publish_in_rooms() {
        for action in ALL_ACTIONS {
            let expected = matches!(action, Action::Chat | Action::RaiseHand | Action::Publish);
            assert_eq!(
                allowed(Role::Attendee, Shape::Room, action),
                expected,
                "{action:?}"
            );
        }
        assert!(!allowed(Role::Attendee, Shape::Stage, Action::Publish));
    }

    #[test]
    fn speakers_publish_on_stage_but_run_nothing() {
        assert!(allowed(Role::Speaker, Shape::Stage, Action::Publish));
        for action in [
            Action::Mute,
            Action::Remove,
            Action::End,
            Action::RotateInvite,
            Action::UpdateSettings,
            Action::Admit,
            Action::Record,
        ] {
            assert!(!allowed(Role::Speaker, Shape::Stage, action), "{action:?}");
        }
    }

    #[test]
    fn only_the_host_ends_the_session_or_makes_cohosts() {
        for role in ROLES {
            assert_eq!(allowed(role, Shape::Room, Action::End), role == Role::Host);
            assert_eq!(
                allowed(role, Shape::Room, Action::SetRole(Role::Cohost)),
                role == Role::Host
            );
            assert!(
                !allowed(role, Shape::Room, Action::SetRole(Role::Host)),
                "nobody promotes to host"
            );
        }
    }

    #[test]
    fn nobody_acts_on_an_equal_or_higher_rank() {
        for actor in ROLES {
            for target in ROLES {
                let ok = allowed_on(actor, target, Shape::Stage, Action::Mute);
                assert_eq!(
                    ok,
                    rank(actor) > rank(target) && rank(actor) >= 2,
                    "{actor:?} -> {target:?}"
                );
            }
        }
        assert!(allowed_on(
            Role::Cohost,
            Role::Speaker,
            Shape::Stage,
            Action::SetRole(Role::Attendee)
        ));
        assert!(!allowed_on(
            Role::Cohost,
            Role::Host,
            Shape::Stage,
            Action::Remove
        ));
        assert!(!allowed_on(
            Role::Cohost,
            Role::Cohost,
            Shape::Stage,
            Action::Remove
        ));
    }
}
