// What we send: our microphone, camera and screen, and whether we may send at all. The server
// decides who may publish (role and session shape); this module follows: it opens the devices
// when publishing becomes allowed, releases them when it stops being allowed, and keeps the
// publish connection's transceivers in step. No DOM, no WebSocket.

import { Emitter } from './emitter.js';

/** @typedef {import('./protocol.js').MediaKind} MediaKind */
/** @typedef {import('./negotiation.js').Outgoing} Outgoing */
/** @typedef {import('./media.js').LocalMedia} LocalMedia */

/**
 * @typedef {object} PublisherEvents
 * @property {undefined} changed our tracks, their on/off state or the screen share changed
 * @property {undefined} started devices were opened and offered; their state may need telling
 * @property {string} notice something the user should know (a device missing, a failed share)
 */

/**
 * @typedef {object} PublisherDeps
 * @property {(outgoing: Outgoing[]) => void} setOutgoing makes the publish connection send these
 * @property {() => Promise<LocalMedia>} openMedia opens camera and microphone
 * @property {() => Promise<MediaStreamTrack>} openScreen asks for a screen to share
 * @property {(error: unknown) => string | null} screenProblem what to tell the user when sharing fails
 */

/** @extends {Emitter<PublisherEvents>} */
export class Publisher extends Emitter {
  /** @param {PublisherDeps} deps */
  constructor(deps) {
    super();
    /** @private @readonly */
    this.deps = deps;
    /** @type {MediaStream | null} our camera and microphone, while we may publish */
    this.stream = null;
    /** @type {MediaStreamTrack | null} the screen we share */
    this.screen = null;
    /** Whether we may publish now (as the server's rules say). */
    this.allowed = false;
    /** Devices are being opened. */
    this.opening = false;
    /** @private bumped on every change of `allowed`, so a slow device prompt cannot revive a stopped publisher */
    this.generation = 0;
    /** @private */
    this.closed = false;
  }

  /**
   * Starts or stops publishing. Starting opens camera and microphone (once, until stopped) with
   * the given devices off, as the server last recorded them: being taken off stage and brought
   * back must not undo a host's mute.
   * @param {boolean} allowed
   * @param {() => {audio: boolean, video: boolean}} [muted] read once the devices are open
   */
  async setAllowed(allowed, muted = () => ({ audio: false, video: false })) {
    if (this.closed || allowed === this.allowed) return;
    this.allowed = allowed;
    const mine = ++this.generation;
    if (!allowed) {
      this.opening = false;
      this.release();
      this.sync();
      this.emit('changed', undefined);
      return;
    }
    this.opening = true;
    this.emit('changed', undefined);
    const media = await this.deps.openMedia();
    if (mine !== this.generation || this.closed) {
      for (const track of media.stream?.getTracks() ?? []) track.stop();
      return;
    }
    this.opening = false;
    this.stream = media.stream;
    const off = muted();
    for (const track of this.stream?.getTracks() ?? []) {
      track.enabled = !(track.kind === 'audio' ? off.audio : off.video);
    }
    if (media.problem) this.emit('notice', media.problem);
    this.sync();
    this.emit('changed', undefined);
    this.emit('started', undefined);
  }

  /**
   * Our microphone or camera track, if we have one open.
   * @param {MediaKind} kind
   * @returns {MediaStreamTrack | null}
   */
  track(kind) {
    const stream = this.stream;
    if (!stream) return null;
    return (kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks())[0] ?? null;
  }

  /**
   * Whether our microphone or camera is off (or missing).
   * @param {MediaKind} kind
   */
  isMuted(kind) {
    const track = this.track(kind);
    return !track || !track.enabled;
  }

  /**
   * Turns the microphone or camera off or on locally (the track keeps flowing, as silence or
   * black, so turning it back on needs no renegotiation).
   * @param {MediaKind} kind
   * @param {boolean} muted
   * @returns {boolean} whether we have that device
   */
  setMuted(kind, muted) {
    const track = this.track(kind);
    if (!track) return false;
    track.enabled = !muted;
    this.emit('changed', undefined);
    return true;
  }

  /** Asks for a screen and shares it next to the camera. Stops by itself when the user stops it. */
  async startScreen() {
    if (!this.allowed || this.screen) return;
    const mine = this.generation;
    /** @type {MediaStreamTrack} */
    let track;
    try {
      track = await this.deps.openScreen();
    } catch (error) {
      const problem = this.deps.screenProblem(error);
      if (problem) this.emit('notice', problem);
      return;
    }
    if (mine !== this.generation || this.closed || this.screen) {
      track.stop();
      return;
    }
    // The browser's own "Stop sharing" bar ends the track without telling us otherwise.
    track.addEventListener('ended', () => {
      if (this.screen === track) this.stopScreen();
    });
    track.contentHint = 'detail';
    this.screen = track;
    this.sync();
    this.emit('changed', undefined);
  }

  /** Stops sharing the screen. */
  stopScreen() {
    const track = this.screen;
    if (!track) return;
    this.screen = null;
    track.stop();
    this.sync();
    this.emit('changed', undefined);
  }

  /**
   * Offers what we send again, on a new publish connection: after a reconnect had to join
   * afresh, the devices stayed open but the connection that carried them is gone.
   */
  republish() {
    if (!this.closed) this.sync();
  }

  /** Releases every device; the publisher is unusable afterwards. */
  close() {
    this.closed = true;
    this.allowed = false;
    this.release();
  }

  /** @private stops and forgets every local track */
  release() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.screen?.stop();
    this.screen = null;
  }

  /** @private tells the publish connection what to send now */
  sync() {
    /** @type {Outgoing[]} */
    const outgoing = [];
    const audio = this.track('audio');
    const video = this.track('video');
    if (audio) outgoing.push({ track: audio, source: 'microphone' });
    if (video) outgoing.push({ track: video, source: 'camera' });
    if (this.screen) outgoing.push({ track: this.screen, source: 'screen' });
    this.deps.setOutgoing(outgoing);
  }
}
