// What we receive from the others: the server's track announcements (`track_published`,
// TrackInfo with its source) matched with the tracks that actually arrive on the subscribe
// connection, regrouped per participant into a camera stream (microphone and camera) and a
// screen stream. The browser puts all of a participant's tracks in one MediaStream (its id is
// the participant id); a screen needs its own tile, so it needs its own stream. No DOM.

/** @typedef {import('./protocol.js').TrackInfo} TrackInfo */
/** @typedef {import('./protocol.js').MediaKind} MediaKind */
/** @typedef {import('./protocol.js').TrackSource} TrackSource */

/**
 * A track that arrived, as tests and the UI see it.
 * @typedef {object} RemoteTrack
 * @property {string} participantId
 * @property {string} trackId
 * @property {MediaKind} kind
 * @property {TrackSource} source
 */

/**
 * A participant's media, split for display.
 * @typedef {object} ParticipantMedia
 * @property {MediaStream | null} camera microphone and camera (null before anything arrived)
 * @property {MediaStream | null} screen the shared screen (null when not sharing)
 */

export class RemoteMedia {
  /**
   * @param {(participantId: string) => void} onRemoved told when the browser dropped a track on
   *   its own (the server's next offer left it out)
   */
  constructor(onRemoved) {
    /** @private @readonly */
    this.onRemoved = onRemoved;
    /** @private @type {WeakSet<MediaStream>} browser streams we already watch */
    this.watched = new WeakSet();
    /** @type {Map<string, TrackInfo>} every track the server announced, by track id */
    this.announced = new Map();
    /** @private @type {Map<string, {participantId: string, track: MediaStreamTrack}>} tracks that arrived, by id */
    this.arrived = new Map();
    /** @private @type {Map<string, MediaStream>} by participant id */
    this.cameraStreams = new Map();
    /** @private @type {Map<string, MediaStream>} by participant id */
    this.screenStreams = new Map();
  }

  /**
   * The server announced a track (in `joined` or `track_published`).
   * @param {TrackInfo} info
   * @returns {string | null} the participant whose media changed, if any did
   */
  announce(info) {
    this.announced.set(info.id, info);
    // Normally the announcement comes first; if the track beat it, file it under its source now.
    return this.arrived.has(info.id) ? this.place(info.id) : null;
  }

  /**
   * The server said a track ended. It leaves the tiles at once, before the next offer removes
   * it from the connection.
   * @param {string} trackId
   * @returns {string | null} the participant whose media changed, if any did
   */
  unannounce(trackId) {
    const info = this.announced.get(trackId);
    this.announced.delete(trackId);
    return this.depart(trackId) ?? info?.participant_id ?? null;
  }

  /**
   * A track arrived on the subscribe connection, in the browser's stream for its publisher.
   * @param {string} participantId
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   * @returns {string} the participant whose media changed
   */
  arrive(participantId, track, stream) {
    this.arrived.set(track.id, { participantId, track });
    if (!this.watched.has(stream)) {
      this.watched.add(stream);
      // The browser removes a track from its stream when the server's next offer drops it.
      stream.addEventListener('removetrack', (event) => {
        const changed = this.depart(event.track.id);
        if (changed) this.onRemoved(changed);
      });
    }
    return this.place(track.id) ?? participantId;
  }

  /**
   * A track left the subscribe connection (or its announcement was withdrawn).
   * @param {string} trackId
   * @returns {string | null} the participant whose media changed, if any did
   */
  depart(trackId) {
    const entry = this.arrived.get(trackId);
    if (!entry) return null;
    this.arrived.delete(trackId);
    this.unplace(entry.participantId, entry.track);
    return entry.participantId;
  }

  /**
   * Forgets everything about someone who left.
   * @param {string} participantId
   */
  forget(participantId) {
    for (const [trackId, info] of this.announced) {
      if (info.participant_id === participantId) this.announced.delete(trackId);
    }
    for (const [trackId, entry] of this.arrived) {
      if (entry.participantId === participantId) this.arrived.delete(trackId);
    }
    this.cameraStreams.delete(participantId);
    this.screenStreams.delete(participantId);
  }

  /**
   * @param {string} participantId
   * @returns {ParticipantMedia}
   */
  mediaOf(participantId) {
    const screen = this.screenStreams.get(participantId);
    return {
      camera: this.cameraStreams.get(participantId) ?? null,
      screen: screen && screen.getTracks().length > 0 ? screen : null,
    };
  }

  /**
   * Participants who have at least one arrived or announced track.
   * @returns {Set<string>}
   */
  publishers() {
    const ids = new Set([...this.announced.values()].map((info) => info.participant_id));
    for (const entry of this.arrived.values()) ids.add(entry.participantId);
    return ids;
  }

  /** @returns {RemoteTrack[]} the tracks that arrived */
  list() {
    return [...this.arrived.entries()].map(([trackId, { participantId, track }]) => ({
      participantId,
      trackId,
      kind: track.kind === 'audio' ? 'audio' : 'video',
      source: this.sourceOf(trackId, track),
    }));
  }

  /**
   * @private
   * @param {string} trackId
   * @param {MediaStreamTrack} track
   * @returns {TrackSource}
   */
  sourceOf(trackId, track) {
    return this.announced.get(trackId)?.source ?? (track.kind === 'audio' ? 'microphone' : 'camera');
  }

  /**
   * Puts an arrived track in the stream its source belongs to.
   * @private
   * @param {string} trackId
   * @returns {string | null}
   */
  place(trackId) {
    const entry = this.arrived.get(trackId);
    if (!entry) return null;
    const { participantId, track } = entry;
    this.unplace(participantId, track);
    const streams = this.sourceOf(trackId, track) === 'screen' ? this.screenStreams : this.cameraStreams;
    let stream = streams.get(participantId);
    if (!stream) {
      stream = new MediaStream();
      streams.set(participantId, stream);
    }
    stream.addTrack(track);
    return participantId;
  }

  /**
   * @private
   * @param {string} participantId
   * @param {MediaStreamTrack} track
   */
  unplace(participantId, track) {
    this.cameraStreams.get(participantId)?.removeTrack(track);
    this.screenStreams.get(participantId)?.removeTrack(track);
  }
}
