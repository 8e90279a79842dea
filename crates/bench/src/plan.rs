//! Who joins which session, with which link, publishing what: a scenario turned into a list of
//! rooms and members, in join order. Pure, so the shapes of the scenarios are tested here.

use hearth_client::PublishOptions;

use crate::{RunArgs, Scenario};

/// Which link a member joins with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The host link: may publish in any session.
    Host,
    /// The session's invite link: an attendee (who may not publish on a stage).
    Invite,
    /// A minted invite with the speaker role: may publish on a stage.
    Speaker,
}

/// One participant to be.
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    pub link: Link,
    /// What it publishes; `None`: receive-only.
    pub publish: Option<PublishOptions>,
    /// Tracks it should receive once everyone is in.
    pub expects_tracks: usize,
}

/// One session and its members, publishers first.
#[derive(Debug, Clone)]
pub struct Room {
    pub title: String,
    /// `room` (everyone may publish) or `stage` (attendees only watch).
    pub shape: &'static str,
    pub members: Vec<Slot>,
}

impl Room {
    /// Whether any member joins with a speaker invite (which must be minted first).
    pub fn needs_speaker_invite(&self) -> bool {
        self.members.iter().any(|m| m.link == Link::Speaker)
    }
}

/// Audio and video shaped like a browser's: VP8-sized frames at the bitrate, Opus at 50/s.
pub fn av(args: &RunArgs) -> PublishOptions {
    PublishOptions {
        video_bitrate: Some(args.bitrate),
        frame_rate: args.fps,
        keyframe_every: Some(args.keyframe_interval.max(1) * args.fps.max(1)),
        pacing: (args.pacing > 0.0).then_some(args.pacing),
        clip: args
            .clip
            .clone()
            .map(|clip| (clip, hearth_client::ClipSending::default())),
        ..PublishOptions::default()
    }
}

fn audio_only() -> PublishOptions {
    PublishOptions {
        video: false,
        ..PublishOptions::default()
    }
}

/// The rooms of a scenario. Churn has one room holding only its resident host; the churning
/// participants are made up as the run goes.
pub fn plan(args: &RunArgs) -> Vec<Room> {
    match args.scenario {
        Scenario::Meeting => {
            let size = args.room_size.max(2);
            (0..args.rooms.max(1))
                .map(|r| Room {
                    title: format!("bench meeting {r}"),
                    shape: "room",
                    members: (0..size)
                        .map(|i| Slot {
                            name: format!("m{r}-{i}"),
                            link: if i == 0 { Link::Host } else { Link::Invite },
                            publish: Some(av(args)),
                            expects_tracks: 2 * (size - 1),
                        })
                        .collect(),
                })
                .collect()
        }
        Scenario::Live => {
            let mut members = vec![Slot {
                name: "presenter".into(),
                link: Link::Host,
                publish: Some(av(args)),
                expects_tracks: 0,
            }];
            members.extend((0..args.viewers).map(|i| Slot {
                name: format!("viewer-{i}"),
                link: Link::Invite,
                publish: None,
                expects_tracks: 2,
            }));
            vec![Room {
                title: "bench live".into(),
                shape: "stage",
                members,
            }]
        }
        Scenario::Audio => {
            let speakers = args.speakers.max(1);
            let mut members: Vec<Slot> = (0..speakers)
                .map(|i| Slot {
                    name: format!("speaker-{i}"),
                    link: if i == 0 { Link::Host } else { Link::Speaker },
                    publish: Some(audio_only()),
                    expects_tracks: speakers - 1,
                })
                .collect();
            members.extend((0..args.listeners).map(|i| Slot {
                name: format!("listener-{i}"),
                link: Link::Invite,
                publish: None,
                expects_tracks: speakers,
            }));
            vec![Room {
                title: "bench audio".into(),
                shape: "stage",
                members,
            }]
        }
        Scenario::Churn => vec![Room {
            title: "bench churn".into(),
            shape: "room",
            members: vec![Slot {
                name: "resident".into(),
                link: Link::Host,
                publish: Some(av(args)),
                expects_tracks: 0,
            }],
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> RunArgs {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            run: RunArgs,
        }
        let argv = std::iter::once("bench").chain(extra.iter().copied());
        Wrap::try_parse_from(argv).expect("valid flags").run
    }

    #[test]
    fn a_meeting_is_rooms_where_everyone_publishes_and_receives_everyone_else() {
        let rooms = plan(&args(&[
            "--scenario",
            "meeting",
            "--rooms",
            "3",
            "--room-size",
            "8",
        ]));
        assert_eq!(rooms.len(), 3);
        for room in &rooms {
            assert_eq!(room.members.len(), 8);
            assert_eq!(room.members[0].link, Link::Host);
            assert!(room.members.iter().all(|m| m.publish.is_some()));
            assert!(room.members.iter().all(|m| m.expects_tracks == 14));
        }
    }

    #[test]
    fn live_is_one_publisher_on_a_stage_and_receive_only_viewers() {
        let rooms = plan(&args(&["--scenario", "live", "--viewers", "100"]));
        let room = &rooms[0];
        assert_eq!(
            (rooms.len(), room.shape, room.members.len()),
            (1, "stage", 101)
        );
        let video = room.members[0]
            .publish
            .clone()
            .expect("presenter publishes");
        assert_eq!(video.video_bitrate, Some(1_500_000));
        assert_eq!(video.keyframe_every, Some(90), "every 3 s at 30 fps");
        assert!(room.members[1..].iter().all(|m| m.publish.is_none()));
        assert!(room.members[1..].iter().all(|m| m.expects_tracks == 2));
    }

    #[test]
    fn audio_speakers_publish_audio_only_and_need_speaker_invites() {
        let rooms = plan(&args(&["--scenario", "audio", "--listeners", "50"]));
        let room = &rooms[0];
        assert!(room.needs_speaker_invite());
        assert_eq!(room.members.len(), 60);
        let speaker = room.members[1].publish.clone().expect("speakers publish");
        assert!(speaker.audio && !speaker.video);
        assert_eq!(room.members[59].expects_tracks, 10);
    }
}
