// One participant's tile: video (which also plays their audio), name label, and the
// mic-off / camera-off / raised-hand / speaking indicators; or a shared screen. Pure DOM; knows
// nothing of the call.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Icon outlines on a 24x24 grid, drawn with the current text colour. */
const ICONS = {
  mic: ['M9 5a3 3 0 0 1 6 0v6a3 3 0 0 1-6 0z', 'M5 11a7 7 0 0 0 14 0', 'M12 18v3'],
  camera: ['M3 8a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1z', 'M15 11l6-3v8l-6-3'],
  slash: ['M4 3l17 18'],
  // Level bars: reads as "sound is coming from here" without relying on the ring's colour.
  speaking: ['M5 10v4', 'M9.5 6v12', 'M14 8v8', 'M18.5 10.5v3'],
  hand: [
    'M8 13V6a1.5 1.5 0 0 1 3 0v5',
    'M11 11V4.5a1.5 1.5 0 0 1 3 0V11',
    'M14 11V6a1.5 1.5 0 0 1 3 0v5.5',
    'M17 10a1.5 1.5 0 0 1 3 0v4a7 7 0 0 1-7 7h-1a7 7 0 0 1-5.6-2.8l-2.2-3a1.5 1.5 0 0 1 2.4-1.8L8 15',
  ],
};

/**
 * @param {(keyof typeof ICONS)[]} parts
 * @returns {SVGSVGElement}
 */
function icon(...parts) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon');
  for (const part of parts) {
    for (const d of ICONS[part]) {
      const path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('d', d);
      svg.append(path);
    }
  }
  return svg;
}

/**
 * @param {'mic' | 'camera'} device
 * @returns {SVGSVGElement}
 */
export function deviceIcon(device) {
  return icon(device);
}

/**
 * @param {'mic' | 'camera'} device
 * @returns {SVGSVGElement}
 */
export function deviceOffIcon(device) {
  return icon(device, 'slash');
}

/** @returns {SVGSVGElement} a raised hand */
export function handIcon() {
  return icon('hand');
}

/**
 * What a tile shows instead of a picture: the first letters of the first and last name.
 * @param {string} name
 * @returns {string}
 */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((word) => [...word][0] ?? '').join('').toUpperCase() || '?';
}

/**
 * @typedef {object} TileOptions
 * @property {string} participantId
 * @property {string} name
 * @property {boolean} local our own preview: muted (no echo) and mirrored
 * @property {boolean} [screen] a shared screen rather than a camera: labelled "<name>'s screen",
 *   never mirrored, shown whole
 * @property {(video: HTMLVideoElement) => void} [onAutoplayBlocked]
 *   the browser refused to play with sound before a user gesture
 */

/**
 * What every tile shows besides its video: the initials while there is no picture, and a label
 * holding the name. Live tiles and replay tiles share it, so they look the same.
 * @param {string} person whose initials the placeholder shows
 * @param {string} text the label's name text
 * @returns {{placeholder: HTMLElement, label: HTMLElement, name: HTMLElement}}
 */
export function tileParts(person, text) {
  const placeholder = document.createElement('div');
  placeholder.className = 'tile-placeholder';
  placeholder.setAttribute('aria-hidden', 'true');
  placeholder.textContent = initials(person);
  const label = document.createElement('div');
  label.className = 'tile-label';
  const name = document.createElement('span');
  name.className = 'tile-name';
  name.dataset.testid = 'tile-name';
  name.textContent = text;
  label.append(name);
  return { placeholder, label, name };
}

export class Tile {
  /** @param {TileOptions} options */
  constructor(options) {
    /** @readonly */
    this.participantId = options.participantId;
    /** @private @readonly */
    this.options = options;

    const element = document.createElement('article');
    const screen = options.screen ?? false;
    element.className = screen ? 'tile screen' : 'tile';
    element.dataset.testid = `${options.local ? 'local-' : ''}${screen ? 'screen-' : ''}tile`;
    element.dataset.participantId = options.participantId;
    element.dataset.name = options.name;
    element.dataset.hasVideo = 'false';
    /** @readonly */
    this.element = element;

    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    // Our own preview must not play our microphone back to us.
    video.muted = options.local;
    video.dataset.testid = 'tile-video';
    if (options.local && !screen) video.classList.add('mirrored');
    /** @readonly */
    this.video = video;
    /** @private the track ids last attached to the video element */
    this.signature = '';

    const text = screen
      ? (options.local ? 'Your screen' : `${options.name}'s screen`)
      : (options.local ? `${options.name} (you)` : options.name);
    const { placeholder, label, name } = tileParts(options.name, text);
    /** @private @readonly the tile's accessible name while nobody speaks */
    this.labelText = text;

    const hand = document.createElement('span');
    hand.className = 'indicator hand';
    hand.dataset.testid = 'tile-hand';
    hand.title = 'Hand raised';
    hand.append(handIcon());
    hand.hidden = true;
    /** @private @readonly */
    this.hand = hand;

    const micOff = document.createElement('span');
    micOff.className = 'indicator';
    micOff.dataset.testid = 'mic-muted';
    micOff.title = 'Microphone off';
    micOff.append(deviceOffIcon('mic'));
    micOff.hidden = true;
    /** @private @readonly */
    this.micOff = micOff;

    const cameraOff = document.createElement('span');
    cameraOff.className = 'indicator';
    cameraOff.dataset.testid = 'camera-off';
    cameraOff.title = 'Camera off';
    cameraOff.append(deviceOffIcon('camera'));
    cameraOff.hidden = true;
    /** @private @readonly */
    this.cameraOff = cameraOff;

    const speaking = document.createElement('span');
    speaking.className = 'indicator speaking';
    speaking.dataset.testid = 'tile-speaking';
    speaking.title = 'Speaking';
    speaking.append(icon('speaking'));
    speaking.hidden = true;
    /** @private @readonly */
    this.speakingIcon = speaking;

    label.append(hand, micOff, cameraOff, speaking, name);
    element.append(video, placeholder, label);
    this.setMuted(false, false);
    this.setSpeaking(false, false);
  }

  /** The name as given at join. */
  get name() {
    return this.options.name;
  }

  /**
   * Shows the mic-off / camera-off indicators. A camera that is off shows the initials
   * instead of a frozen last frame; the <video> keeps playing for the sound.
   * @param {boolean} audioMuted
   * @param {boolean} videoMuted
   */
  setMuted(audioMuted, videoMuted) {
    this.micOff.hidden = !audioMuted;
    this.cameraOff.hidden = !videoMuted;
    this.element.dataset.audioMuted = String(audioMuted);
    this.element.dataset.videoMuted = String(videoMuted);
  }

  /**
   * Marks the tile of someone speaking now (a ring and the level icon) and of the one holding
   * the floor (who may have just paused; the room decides where that tile goes).
   * @param {boolean} speaking
   * @param {boolean} active
   */
  setSpeaking(speaking, active) {
    const element = this.element;
    element.classList.toggle('speaking', speaking);
    element.classList.toggle('active-speaker', active);
    element.dataset.speaking = String(speaking);
    element.dataset.activeSpeaker = String(active);
    this.speakingIcon.hidden = !speaking;
    // Screen readers get it from the name, not from the ring.
    element.setAttribute('aria-label', speaking ? `${this.labelText}, speaking` : this.labelText);
  }

  /** @param {boolean} raised */
  setHand(raised) {
    this.hand.hidden = !raised;
  }

  /**
   * Plays this stream (video and audio in one element).
   * @param {MediaStream | null} stream
   */
  setStream(stream) {
    this.element.dataset.hasVideo = String(Boolean(stream && stream.getVideoTracks().length > 0));
    // Re-attach when the set of tracks changed, not only the stream object: not every
    // browser picks up a video track added to a stream that is already playing.
    const signature = stream ? stream.getTracks().map((track) => track.id).sort().join(' ') : '';
    if (this.video.srcObject === stream && this.signature === signature) return;
    this.signature = signature;
    this.video.srcObject = stream;
    if (stream) this.play();
  }

  /** Starts playback again, e.g. with sound after a user gesture. */
  play() {
    this.video.play().catch((error) => {
      if (error instanceof DOMException && error.name === 'NotAllowedError' && !this.video.muted) {
        // Autoplay with sound needs a gesture on this page. Play muted so the picture is
        // there, and let the room offer a button to turn the sound on.
        this.video.muted = true;
        this.video.play().catch(() => {});
        this.options.onAutoplayBlocked?.(this.video);
      }
      // AbortError: a newer srcObject replaced this one; nothing to do.
    });
  }

  remove() {
    this.video.srcObject = null;
    this.element.remove();
  }
}
