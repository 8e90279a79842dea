//! Layer allocation: what a subscriber gets for a budget and a tile size, and how a link that
//! proved too small is kept from being retried at once.

use super::*;

/// A camera in three layers: 320, 640 and 1280 wide at 150, 500 and 1500 kbit/s.
const CAMERA: [Layer; 3] = [
    Layer {
        bitrate: 150_000,
        width: 320,
        height: 180,
    },
    Layer {
        bitrate: 500_000,
        width: 640,
        height: 360,
    },
    Layer {
        bitrate: 1_500_000,
        width: 1280,
        height: 720,
    },
];

fn shown(layers: &[Layer]) -> Demand<'_> {
    Demand { layers, view: None }
}

#[test]
fn the_budget_picks_the_highest_layer_that_fits() {
    assert_eq!(allocate(5_000_000, &[shown(&CAMERA)]), vec![Some(2)]);
    assert_eq!(allocate(1_000_000, &[shown(&CAMERA)]), vec![Some(1)]);
    assert_eq!(allocate(300_000, &[shown(&CAMERA)]), vec![Some(0)]);
}

#[test]
fn a_starved_link_still_gets_the_lowest_layer() {
    assert_eq!(allocate(10_000, &[shown(&CAMERA)]), vec![Some(0)]);
}

#[test]
fn a_small_tile_does_not_get_a_layer_bigger_than_it_shows() {
    let thumbnail = Demand {
        layers: &CAMERA,
        view: Some((300, 169)),
    };
    assert_eq!(allocate(5_000_000, &[thumbnail]), vec![Some(0)]);
    let half = Demand {
        layers: &CAMERA,
        view: Some((600, 338)),
    };
    assert_eq!(allocate(5_000_000, &[half]), vec![Some(1)]);
    let big = Demand {
        layers: &CAMERA,
        view: Some((1920, 1080)),
    };
    assert_eq!(allocate(5_000_000, &[big]), vec![Some(2)]);
    // A portrait tile 300 wide but 400 tall needs the 640x360 layer's height... and more.
    let tall = Demand {
        layers: &CAMERA,
        view: Some((300, 400)),
    };
    assert_eq!(allocate(5_000_000, &[tall]), vec![Some(2)]);
}

#[test]
fn a_tile_nobody_sees_gets_no_video() {
    let hidden = Demand {
        layers: &CAMERA,
        view: Some((0, 0)),
    };
    assert_eq!(
        allocate(5_000_000, &[hidden, shown(&CAMERA)]),
        vec![None, Some(2)]
    );
}

#[test]
fn layers_the_publisher_stopped_sending_are_not_chosen() {
    let mut layers = CAMERA;
    layers[2].bitrate = 0; // its uplink dropped the top layer
    assert_eq!(allocate(5_000_000, &[shown(&layers)]), vec![Some(1)]);
    layers[0].bitrate = 0;
    assert_eq!(allocate(100_000, &[shown(&layers)]), vec![Some(1)]);
}

#[test]
fn the_budget_is_shared_a_layer_at_a_time() {
    // 2 Mbit/s for two cameras: both at 640 (1 Mbit/s) plus nothing more fits a 1500 layer
    // for one of them (500 + 1500 = 2000 does).
    let two = [shown(&CAMERA), shown(&CAMERA)];
    assert_eq!(allocate(2_000_000, &two), vec![Some(2), Some(1)]);
    assert_eq!(allocate(1_000_000, &two), vec![Some(1), Some(1)]);
    assert_eq!(allocate(700_000, &two), vec![Some(1), Some(0)]);
    assert_eq!(cost(&two, &[Some(1), Some(0)]), 650_000);
}

#[test]
fn a_track_without_simulcast_is_its_only_layer() {
    let single = [Layer {
        bitrate: 2_000_000,
        width: 1280,
        height: 720,
    }];
    assert_eq!(allocate(100_000, &[shown(&single)]), vec![Some(0)]);
    // Nothing measured yet: still layer 0, so the first keyframe gets through.
    let fresh = [Layer::default()];
    assert_eq!(allocate(0, &[shown(&fresh)]), vec![Some(0)]);
}

#[test]
fn a_rate_the_link_failed_to_carry_is_ruled_out_for_a_while() {
    let t0 = Instant::now();
    let mut headroom = Headroom::default();
    assert_eq!(headroom.budget(t0, 2_000_000, 1_500_000), 2_000_000);
    // Policed: the estimate collapses under the 1.5 Mbit/s layer.
    let budget = headroom.budget(t0, 300_000, 1_500_000);
    assert_eq!(budget, 300_000);
    // The loss-based estimate climbs back while the low layer flows without loss...
    let later = t0 + Duration::from_millis(1500);
    assert!(headroom.budget(later, 3_000_000, 150_000) < 1_500_000);
    // ...but the ruled-out rate is tried again after the backoff.
    let after = t0 + FIRST_BACKOFF + Duration::from_millis(1);
    assert_eq!(headroom.budget(after, 3_000_000, 150_000), 3_000_000);
}

#[test]
fn repeated_failed_upgrades_back_off_longer_and_a_lasting_one_resets() {
    let t0 = Instant::now();
    let mut headroom = Headroom::default();
    let mut now = t0;
    let mut ruled_out_for = Vec::new();
    for _ in 0..4 {
        headroom.upgraded(now);
        now += Duration::from_millis(500);
        headroom.budget(now, 300_000, 1_500_000); // the upgrade failed
        let failed_at = now;
        while headroom.budget(now, 3_000_000, 150_000) < 1_500_000 {
            now += Duration::from_millis(100);
        }
        ruled_out_for.push(now.duration_since(failed_at));
    }
    let secs: Vec<u64> = ruled_out_for.iter().map(|d| d.as_secs()).collect();
    assert_eq!(secs, vec![4, 8, 8, 8], "{ruled_out_for:?}");
    // An upgrade that holds clears the strikes: the next failure backs off briefly again.
    headroom.upgraded(now);
    now += STABLE_AFTER;
    assert_eq!(headroom.budget(now, 3_000_000, 1_500_000), 3_000_000);
    headroom.upgraded(now + Duration::from_secs(30));
    now += Duration::from_secs(60);
    headroom.budget(now, 300_000, 1_500_000);
    let failed_at = now;
    while headroom.budget(now, 3_000_000, 150_000) < 1_500_000 {
        now += Duration::from_millis(100);
    }
    assert_eq!(now.duration_since(failed_at).as_secs(), 2);
}
