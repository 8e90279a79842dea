// The replay itself: one media element per recorded stream, one tile per participant, and the
// loop that keeps every element on the master clock. After Play or a seek the clock waits:
// first until every element that should play is in place and can play, then until the sound
// actually comes out (audio output takes a moment to start), and starts where the sound is.
// Then each tick compares every element with the clock: far off, it is moved; a little off,
// its speed is nudged; outside its stream's span, it waits paused where it will be needed.
// Sound that begins mid-way is started a measured moment early, so it is heard on time.

import { Emitter } from '../emitter.js';
import { tileParts } from '../tile.js';
import { MasterClock } from './clock.js';
import { SEEK_BEYOND_S, correction, covers, localSeconds, people, presentAt, sortedEvents, streamSpan } from './timeline.js';

/** @typedef {import('../recordings-api.js').Manifest} Manifest */
/** @typedef {import('../recordings-api.js').StreamEntry} StreamEntry */
/** @typedef {import('../recordings-api.js').ReplayEvent} ReplayEvent */
/** @typedef {import('./timeline.js').ReplayPerson} ReplayPerson */

/** How often the elements are brought in step (ms). */
const TICK_MS = 50;
/** While paused, a picture further off than this (s) is moved to the clock's position. */
const PAUSED_SLACK_S = 0.04;
/** The same for sound, which must rest precisely where it will start (see `restingAt`). */
const PAUSED_SOUND_SLACK_S = 0.01;
/** How often the loop looks while the sound is starting (ms): the clock starts when it does. */
const STARTING_TICK_MS = 10;
/** The longest the clock waits for elements to be ready after Play or a seek (ms). */
const READY_WAIT_MS = 4_000;
/** Elements this close to their start (ms) are loaded and positioned ahead of time. */
const LOOKAHEAD_MS = 3_000;
/** The longest the clock waits for sound to come out after the elements were ready (ms). */
const START_WAIT_MS = 1_000;
/**
 * Sound counts as coming out once its element has moved this far (s): at `play()` it first
 * jumps a few milliseconds, then stands still while the audio output starts.
 */
const SOUND_STARTED_S = 0.03;
/** First guess of how long sound takes to come out after `play()` (ms); then it is measured. */
const SOUND_LATENCY_MS = 80;

/**
 * One recorded stream and the element that plays it.
 * @typedef {object} Track
 * @property {StreamEntry} stream
 * @property {HTMLMediaElement} media
 * @property {import('./timeline.js').Span} span
 */

/**
 * A participant's tiles: camera (always) and screen (if they shared one).
 * @typedef {object} PersonView
 * @property {ReplayPerson} person
 * @property {HTMLElement} tile
 * @property {HTMLElement | null} screenTile
 * @property {Track[]} cameras
 * @property {Track[]} screens
 */

/**
 * What a test (or a curious user) can read about one element.
 * @typedef {object} TrackState
 * @property {string} streamId
 * @property {string} participantId
 * @property {'audio' | 'video'} kind
 * @property {string} source
 * @property {number} startMs
 * @property {number} durationMs
 * @property {boolean} active its stream covers the clock's position
 * @property {number} positionMs where the element is, on the recording's timeline
 * @property {boolean} paused
 * @property {number} readyState
 * @property {number} playbackRate
 * @property {number} videoWidth
 * @property {number} frames video frames presented so far
 * @property {number} elementDurationMs the element's own idea of the file's length
 */

/**
 * @typedef {object} PlayerEvents
 * @property {number} time the clock's position (ms), every tick
 * @property {undefined} state playing, paused, waiting or ended changed
 * @property {string} blocked the browser refused to play sound (the message to show)
 */

/**
 * @typedef {object} PlayerOptions
 * @property {HTMLElement} tiles where camera tiles go
 * @property {HTMLElement} screens where shared screens go
 * @property {HTMLElement} audio where the (invisible) audio elements go
 * @property {() => number} [now] a monotonic clock in ms; `performance.now` by default
 */

/** @extends {Emitter<PlayerEvents>} */
export class ReplayPlayer extends Emitter {
  /**
   * @param {Manifest} manifest
   * @param {PlayerOptions} options
   */
  constructor(manifest, options) {
    super();
    /** @readonly */
    this.manifest = manifest;
    /** @readonly */
    this.durationMs = manifest.duration_ms;
    /** @private @readonly */
    this.now = options.now ?? (() => performance.now());
    /** @readonly */
    this.clock = new MasterClock(manifest.duration_ms);
    /** @readonly events in time order */
    this.events = sortedEvents(manifest.events);
    /** @private whether the user wants it to play */
    this.wantsPlay = false;
    /** @private when the clock began waiting for the elements; null when not waiting */
    this.waitingSince = /** @type {number | null} */ (null);
    /**
     * @private when the elements were ready and the sound was started; null when not
     * starting. Audio takes a moment to come out (the output device starts); the clock starts
     * when it does, so the pictures start with the sound rather than ahead of it.
     */
    this.startingSince = /** @type {number | null} */ (null);
    /**
     * @private how long sound takes to come out after `play()` here (ms), measured: a stream
     * that begins mid-way is started this much ahead of its moment, so it is heard on time.
     */
    this.soundLatencyMs = SOUND_LATENCY_MS;
    /** @private @type {Map<HTMLMediaElement, {at: number, from: number}>} sound started, not yet heard */
    this.soundStarts = new Map();
    /** @private @type {Track[]} */
    this.tracks = [];
    /** @private @type {PersonView[]} */
    this.views = [];
    /** @private @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    /** @private @type {ReturnType<typeof setTimeout> | undefined} the next quick look while sound starts */
    this.quickTick = undefined;

    for (const person of people(manifest)) {
      const view = this.personView(person);
      this.views.push(view);
      options.tiles.append(view.tile);
      if (view.screenTile) options.screens.append(view.screenTile);
      for (const stream of person.streams.filter((s) => s.kind === 'audio')) {
        const audio = document.createElement('audio');
        audio.dataset.testid = 'replay-audio';
        this.addTrack(stream, audio);
        options.audio.append(audio);
      }
    }
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  /** Whether the user asked it to play (it may still be waiting for media). */
  get playing() {
    return this.wantsPlay;
  }

  /** Whether it waits for media before the clock can run. */
  get waiting() {
    return this.waitingSince !== null || this.startingSince !== null;
  }

  /** The clock's position now (ms). */
  position() {
    return this.clock.position(this.now());
  }

  /** Plays from where the clock is (from the start, at the end). Call it from a click: that is the gesture sound needs. */
  play() {
    const now = this.now();
    if (this.clock.atEnd(now)) this.clock.seek(0, now);
    this.wantsPlay = true;
    this.waitingSince = now;
    // Elements whose stream begins later may play with sound then: the browser remembers that
    // this page had a gesture.
    this.tick();
    this.emit('state', undefined);
  }

  pause() {
    const now = this.now();
    this.wantsPlay = false;
    this.waitingSince = null;
    this.startingSince = null;
    this.clock.stop(now);
    this.tick();
    this.emit('state', undefined);
  }

  /**
   * Puts the whole replay at `ms`; if it was playing, it plays on from there once every
   * element has caught up.
   * @param {number} ms
   */
  seek(ms) {
    const now = this.now();
    this.clock.stop(now);
    this.clock.seek(ms, now);
    this.startingSince = null;
    if (this.wantsPlay) this.waitingSince = now;
    this.tick();
    this.emit('state', undefined);
  }

  /** @returns {TrackState[]} every element, as it is at this instant */
  trackStates() {
    const t = this.position();
    return this.tracks.map((track) => {
      const { stream, media } = track;
      return {
        streamId: stream.id,
        participantId: stream.participant_id,
        kind: stream.kind,
        source: stream.source,
        startMs: stream.start_ms,
        durationMs: stream.duration_ms,
        active: this.activeAt(track, t),
        positionMs: stream.start_ms + media.currentTime * 1000,
        paused: media.paused,
        readyState: media.readyState,
        playbackRate: media.playbackRate,
        videoWidth: media instanceof HTMLVideoElement ? media.videoWidth : 0,
        frames: media instanceof HTMLVideoElement ? media.getVideoPlaybackQuality().totalVideoFrames : 0,
        elementDurationMs: Number.isFinite(media.duration) ? media.duration * 1000 : -1,
      };
    });
  }

  /** Stops everything and lets go of the media. */
  destroy() {
    clearInterval(this.timer);
    clearTimeout(this.quickTick);
    for (const { media } of this.tracks) {
      media.pause();
      media.removeAttribute('src');
      media.load();
    }
  }

  /**
   * @private
   * @param {ReplayPerson} person
   * @returns {PersonView}
   */
  personView(person) {
    const tile = tileElement(person, false);
    const cameras = person.streams.filter((s) => s.kind === 'video' && s.source !== 'screen');
    const screens = person.streams.filter((s) => s.kind === 'video' && s.source === 'screen');
    const screenTile = screens.length > 0 ? tileElement(person, true) : null;
    /** @type {PersonView} */
    const view = { person, tile, screenTile, cameras: [], screens: [] };
    for (const stream of cameras) view.cameras.push(this.addTrack(stream, videoElement(stream, tile)));
    if (screenTile) for (const stream of screens) view.screens.push(this.addTrack(stream, videoElement(stream, screenTile)));
    return view;
  }

  /**
   * @private
   * @param {StreamEntry} stream
   * @param {HTMLMediaElement} media
   * @returns {Track}
   */
  addTrack(stream, media) {
    media.preload = 'auto';
    media.src = stream.url;
    media.dataset.streamId = stream.id;
    media.dataset.participantId = stream.participant_id;
    const track = { stream, media, span: streamSpan(stream) };
    this.tracks.push(track);
    return track;
  }

  /**
   * Whether a track should be playing at `t` (its span covers `t`, and its file has not run out).
   * @private
   * @param {Track} track
   * @param {number} t
   */
  activeAt(track, t) {
    if (!(covers(track.span, t, this.durationMs) && t < track.span.toMs)) return false;
    const own = track.media.duration;
    // A file shorter than the manifest says (a torn end): it is over when it is over.
    return !(Number.isFinite(own) && localSeconds(track.stream, t) >= own - 0.02);
  }

  /** @private the loop: tiles, readiness, every element in step */
  tick() {
    const now = this.now();
    if (this.clock.running && this.clock.atEnd(now)) {
      this.clock.stop(now);
      this.wantsPlay = false;
      this.emit('state', undefined);
    }
    if (this.waitingSince !== null && this.readyToRun(now)) {
      this.waitingSince = null;
      this.startingSince = now;
    }
    const starting = this.startSound(now);
    if (starting.size > 0 && this.quickTick === undefined) {
      this.quickTick = setTimeout(() => {
        this.quickTick = undefined;
        this.tick();
      }, STARTING_TICK_MS);
    }
    this.measureSound(now);
    const t = this.clock.position(now);
    const running = this.clock.running;
    for (const track of this.tracks) if (!starting.has(track)) this.syncTrack(track, t, running);
    for (const view of this.views) {
      view.tile.hidden = !presentAt(view.person, t, this.durationMs);
      const camera = view.cameras.find((track) => covers(track.span, t, this.durationMs));
      for (const track of view.cameras) track.media.dataset.active = String(track === camera);
      view.tile.dataset.hasVideo = String(camera !== undefined && camera.media instanceof HTMLVideoElement && camera.media.readyState >= 2);
      if (view.screenTile) {
        const screen = view.screens.find((track) => covers(track.span, t, this.durationMs));
        for (const track of view.screens) track.media.dataset.active = String(track === screen);
        view.screenTile.hidden = screen === undefined;
        view.screenTile.dataset.hasVideo = String(screen !== undefined);
      }
    }
    this.emit('time', t);
  }

  /**
   * After Play or a seek: whether every element that should play now can, so they all start
   * together (or the wait has been long enough: a broken file must not hold the others).
   * @private
   * @param {number} now
   */
  readyToRun(now) {
    if (this.waitingSince === null) return false;
    if (now - this.waitingSince > READY_WAIT_MS) return true;
    const t = this.clock.position(now);
    return this.tracks.every((track) => {
      if (!this.activeAt(track, t)) return true;
      const media = track.media;
      if (media.error) return true;
      const offS = Math.abs(media.currentTime - this.restingAt(track, t));
      return !media.seeking && media.readyState >= HTMLMediaElement.HAVE_FUTURE_DATA && offS <= slack(track);
    });
  }

  /**
   * The elements are in place: plays the sound that should be heard now, and starts the clock
   * once all of it is coming out (or has had long enough), at the position it has reached.
   * @private
   * @param {number} now
   * @returns {Set<Track>} the sound still starting, which the clock waits for
   */
  startSound(now) {
    if (this.startingSince === null) return new Set();
    const t = this.clock.position(now);
    // What should be heard now, and what begins before sound started now could come out.
    const soon = t + this.soundLatencyMs + TICK_MS;
    const sound = this.tracks.filter((track) => track.media instanceof HTMLAudioElement && !track.media.error
      && (this.activeAt(track, t) || (t < track.span.fromMs && track.span.fromMs <= soon)));
    let started = true;
    for (const track of sound) {
      const media = track.media;
      const rest = this.restingAt(track, t);
      if (media.paused) {
        // Put in place first (it may still be where an earlier moment left it), then started.
        started = false;
        if (media.seeking) continue;
        if (Math.abs(media.currentTime - rest) > slack(track)) media.currentTime = rest;
        else if (!media.ended) this.start(media);
      } else if (media.currentTime - rest < SOUND_STARTED_S) {
        started = false;
      }
    }
    if (!started && now - this.startingSince <= START_WAIT_MS) return new Set(sound);
    // The clock starts where the sound is (the earliest of what plays): pictures follow.
    const positions = sound.filter(({ media, stream }) => !media.paused && Math.abs(media.currentTime - localSeconds(stream, t)) < SEEK_BEYOND_S)
      .map(({ media, stream }) => stream.start_ms + media.currentTime * 1000);
    const at = positions.length > 0 ? Math.min(...positions) : t;
    this.startingSince = null;
    this.clock.seek(Math.max(t, at), now);
    this.clock.start(now);
    this.emit('state', undefined);
    return new Set();
  }

  /**
   * Where a paused element waits for the clock at `t`, in its own seconds. Sound waits a little
   * early: once started, it is known to be coming out only when it has moved SOUND_STARTED_S,
   * and by then it has reached the clock's moment, so the pictures start with it.
   * @private
   * @param {Track} track
   * @param {number} t
   * @returns {number}
   */
  restingAt(track, t) {
    const local = localSeconds(track.stream, t);
    return track.media instanceof HTMLAudioElement ? Math.max(0, local - SOUND_STARTED_S) : local;
  }

  /**
   * Learns how long sound takes to come out, from the elements started since the last tick.
   * @private
   * @param {number} now
   */
  measureSound(now) {
    for (const [media, { at, from }] of this.soundStarts) {
      if (media.paused) {
        this.soundStarts.delete(media);
        continue;
      }
      const moved = media.currentTime - from;
      if (moved < SOUND_STARTED_S) continue;
      this.soundStarts.delete(media);
      const latency = Math.min(300, Math.max(0, now - at - moved * 1000));
      this.soundLatencyMs = 0.7 * this.soundLatencyMs + 0.3 * latency;
    }
  }

  /**
   * Brings one element in line with the clock at `t`.
   * @private
   * @param {Track} track
   * @param {number} t
   * @param {boolean} running
   */
  syncTrack(track, t, running) {
    const { media, stream, span } = track;
    if (media.error) return;
    const local = localSeconds(stream, t);
    const active = this.activeAt(track, t);
    if (running && media instanceof HTMLAudioElement && t < span.fromMs && t >= span.fromMs - this.soundLatencyMs) {
      // Sound that begins in a moment: started now, so it comes out on time.
      if (media.paused && !media.seeking) {
        if (media.currentTime > 0) media.currentTime = 0;
        this.start(media);
      }
      return;
    }
    if (!running || !active) {
      if (!media.paused) media.pause();
      if (media.playbackRate !== 1) media.playbackRate = 1;
      // Waits where it will be needed: at the clock's position inside its span, at its start
      // just before it.
      const soon = t >= span.fromMs - LOOKAHEAD_MS && t <= span.toMs;
      const rest = this.restingAt(track, t);
      if (soon && !media.seeking && media.readyState >= HTMLMediaElement.HAVE_METADATA
          && Math.abs(media.currentTime - rest) > slack(track)) {
        media.currentTime = rest;
      }
      return;
    }
    if (media.seeking) return;
    const fix = correction(media.currentTime, local, stream.kind);
    if (fix.kind === 'seek') {
      media.playbackRate = 1;
      media.currentTime = fix.toS;
    } else if (Math.abs(media.playbackRate - fix.rate) > 0.002) {
      media.playbackRate = fix.rate;
    }
    if (media.paused && !media.ended) this.start(media);
  }

  /**
   * @private
   * @param {HTMLMediaElement} media
   */
  start(media) {
    if (media instanceof HTMLAudioElement) this.soundStarts.set(media, { at: this.now(), from: media.currentTime });
    media.play().catch((error) => {
      if (!(error instanceof DOMException) || error.name !== 'NotAllowedError') return;
      if (media instanceof HTMLVideoElement) return;
      // Sound before a gesture: stop, and let the Play button be the gesture.
      this.pause();
      this.emit('blocked', 'The browser held the sound back. Press Play to start the replay with sound.');
    });
  }
}

/**
 * How far a paused element may be from where it should rest (s).
 * @param {Track} track
 */
function slack(track) {
  return track.media instanceof HTMLAudioElement ? PAUSED_SOUND_SLACK_S : PAUSED_SLACK_S;
}

/**
 * @param {ReplayPerson} person
 * @param {boolean} screen
 * @returns {HTMLElement}
 */
function tileElement(person, screen) {
  const tile = document.createElement('article');
  tile.className = screen ? 'tile screen' : 'tile';
  tile.dataset.testid = screen ? 'replay-screen-tile' : 'replay-tile';
  tile.dataset.participantId = person.id;
  tile.dataset.name = person.name;
  tile.dataset.hasVideo = 'false';
  tile.hidden = true;
  const { placeholder, label } = tileParts(person.name, screen ? `${person.name}'s screen` : person.name);
  tile.append(placeholder, label);
  tile.setAttribute('aria-label', screen ? `${person.name}'s screen` : person.name);
  return tile;
}

/**
 * @param {StreamEntry} stream
 * @param {HTMLElement} tile
 * @returns {HTMLVideoElement}
 */
function videoElement(stream, tile) {
  const video = document.createElement('video');
  // The files hold no sound (each microphone is a file of its own); muted, and so never
  // refused by the autoplay rules.
  video.muted = true;
  video.playsInline = true;
  video.dataset.testid = 'replay-video';
  video.dataset.active = 'false';
  video.setAttribute('aria-label', `${tile.dataset.name ?? ''} ${stream.source}`);
  tile.prepend(video);
  return video;
}
