// The room page: tiles, controls, invite link and notices. Drives a Call through its methods
// and renders its events; it never sees the WebSocket or the peer connections.

import { Tile, deviceIcon, deviceOffIcon } from './tile.js';

/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').MediaKind} MediaKind */

/**
 * What a test (or a curious user) can read about a tile.
 * @typedef {object} TileState
 * @property {string} participantId
 * @property {string} name
 * @property {boolean} local
 * @property {boolean} audioMuted
 * @property {boolean} videoMuted
 * @property {number} videoWidth
 * @property {number} videoHeight
 */

/**
 * The page elements the room works with (all in index.html).
 * @typedef {object} RoomElements
 * @property {HTMLElement} status
 * @property {HTMLElement} notices
 * @property {HTMLElement} tiles
 * @property {HTMLElement} title
 * @property {HTMLElement} count
 * @property {HTMLElement} invitePanel
 * @property {HTMLInputElement} inviteLink
 * @property {HTMLElement} inviteStatus
 * @property {HTMLButtonElement} micButton
 * @property {HTMLButtonElement} cameraButton
 * @property {HTMLButtonElement} inviteButton
 * @property {HTMLButtonElement} soundButton
 * @property {HTMLButtonElement} leaveButton
 */

/** How long a notice stays on screen. */
const NOTICE_MS = 8_000;

export class RoomView {
  /**
   * @param {Call} call
   * @param {RoomElements} elements
   * @param {string} inviteUrl the link to give to others
   * @param {string} name our display name
   */
  constructor(call, elements, inviteUrl, name) {
    /** @private @readonly */
    this.call = call;
    /** @private @readonly */
    this.el = elements;
    /** @private @readonly */
    this.inviteUrl = inviteUrl;
    /** @private @type {Map<string, Tile>} remote tiles by participant id */
    this.tiles = new Map();
    /** @private @readonly removes every DOM listener at once on destroy */
    this.listeners = new AbortController();
    /** @private @type {(() => void)[]} */
    this.unsubscribe = [];

    this.el.tiles.replaceChildren();
    this.el.notices.replaceChildren();
    this.el.invitePanel.hidden = true;
    this.el.soundButton.hidden = true;
    this.el.status.textContent = 'Connecting…';
    this.el.count.textContent = '';

    /** @private @readonly */
    this.localTile = new Tile({ participantId: 'local', name, local: true });
    this.localTile.setStream(call.localStream);
    this.el.tiles.append(this.localTile.element);

    this.bindControls();
    this.bindCall();
    this.renderLocalState();
  }

  /** @returns {TileState[]} every tile on the page, ours first */
  tileStates() {
    return [this.localTile, ...this.tiles.values()].map((tile) => ({
      participantId: tile.element.dataset.participantId ?? tile.participantId,
      name: tile.name,
      local: tile === this.localTile,
      audioMuted: tile.element.dataset.audioMuted === 'true',
      videoMuted: tile.element.dataset.videoMuted === 'true',
      videoWidth: tile.video.videoWidth,
      videoHeight: tile.video.videoHeight,
    }));
  }

  /** Detaches from the call and the page. */
  destroy() {
    this.listeners.abort();
    for (const off of this.unsubscribe) off();
    for (const tile of this.tiles.values()) tile.remove();
    this.tiles.clear();
    this.localTile.remove();
  }

  /** @private */
  bindControls() {
    const signal = this.listeners.signal;
    this.el.micButton.addEventListener('click', () => {
      this.call.setMuted('audio', !this.call.isMuted('audio'));
    }, { signal });
    this.el.cameraButton.addEventListener('click', () => {
      this.call.setMuted('video', !this.call.isMuted('video'));
    }, { signal });
    this.el.inviteButton.addEventListener('click', () => void this.showInvite(), { signal });
    this.el.leaveButton.addEventListener('click', () => this.call.leave(), { signal });
    this.el.soundButton.addEventListener('click', () => {
      // This click is the gesture the browser wanted: unmute and play every remote tile.
      for (const tile of this.tiles.values()) {
        tile.video.muted = false;
        tile.play();
      }
      this.el.soundButton.hidden = true;
    }, { signal });
  }

  /** @private */
  bindCall() {
    const call = this.call;
    this.unsubscribe.push(
      call.on('joined', ({ participantId, session }) => {
        this.el.status.textContent = '';
        this.el.title.textContent = session.title;
        this.localTile.element.dataset.participantId = participantId;
        document.title = `${session.title} · Hearth`;
        this.renderCount();
      }),
      call.on('participant_added', (participant) => this.addTile(participant)),
      call.on('participant_changed', (participant) => {
        const tile = this.tiles.get(participant.id) ?? this.addTile(participant);
        tile.setMuted(participant.audio_muted, participant.video_muted);
      }),
      call.on('participant_removed', (participantId) => {
        this.tiles.get(participantId)?.remove();
        this.tiles.delete(participantId);
        this.renderCount();
      }),
      call.on('stream', ({ participantId, stream }) => {
        this.tiles.get(participantId)?.setStream(stream);
      }),
      call.on('local_mute', () => this.renderLocalState()),
      call.on('notice', (text) => this.notice(text)),
    );
  }

  /**
   * @private
   * @param {ParticipantInfo} participant
   * @returns {Tile}
   */
  addTile(participant) {
    let tile = this.tiles.get(participant.id);
    if (!tile) {
      tile = new Tile({
        participantId: participant.id,
        name: participant.name,
        local: false,
        onAutoplayBlocked: () => {
          this.el.soundButton.hidden = false;
        },
      });
      this.tiles.set(participant.id, tile);
      this.el.tiles.append(tile.element);
      // Media may have arrived before the tile (the order of events is not guaranteed).
      const stream = this.call.streams.get(participant.id);
      if (stream) tile.setStream(stream);
      this.renderCount();
    }
    tile.setMuted(participant.audio_muted, participant.video_muted);
    return tile;
  }

  /** @private */
  renderCount() {
    const n = this.tiles.size + 1;
    this.el.count.textContent = n === 1 ? 'Only you' : `${n} people`;
    this.el.tiles.dataset.count = String(n);
  }

  /** @private */
  renderLocalState() {
    const micMuted = this.call.isMuted('audio');
    const cameraMuted = this.call.isMuted('video');
    this.localTile.setMuted(micMuted, cameraMuted);
    renderToggle(this.el.micButton, 'mic', 'Mic', micMuted, this.call.hasDevice('audio'));
    renderToggle(this.el.cameraButton, 'camera', 'Camera', cameraMuted, this.call.hasDevice('video'));
  }

  /** @private */
  async showInvite() {
    const { invitePanel, inviteLink, inviteStatus } = this.el;
    invitePanel.hidden = false;
    inviteLink.value = this.inviteUrl;
    inviteStatus.textContent = '';
    let copied = false;
    // The async clipboard exists only in secure contexts (https, localhost); on plain http
    // the link stays visible and selected so the user can copy it themselves.
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(this.inviteUrl);
        copied = true;
      } catch {
        // Refused (no focus, no permission): fall through to the manual way.
      }
    }
    inviteLink.focus();
    inviteLink.select();
    if (!copied) {
      try {
        copied = document.execCommand('copy');
      } catch {
        copied = false;
      }
    }
    inviteStatus.textContent = copied ? 'Copied to clipboard' : 'Select and copy the link';
    inviteStatus.dataset.copied = String(copied);
  }

  /**
   * @private
   * @param {string} text
   */
  notice(text) {
    const item = document.createElement('p');
    item.className = 'notice';
    item.dataset.testid = 'notice';
    item.textContent = text;
    this.el.notices.append(item);
    setTimeout(() => item.remove(), NOTICE_MS);
  }
}

/**
 * @param {HTMLButtonElement} button
 * @param {'mic' | 'camera'} device
 * @param {string} label
 * @param {boolean} muted
 * @param {boolean} available
 */
function renderToggle(button, device, label, muted, available) {
  button.disabled = !available;
  button.setAttribute('aria-pressed', String(muted));
  button.dataset.muted = String(muted);
  button.title = !available ? `No ${label.toLowerCase()}` : muted ? `Turn ${label.toLowerCase()} on` : `Turn ${label.toLowerCase()} off`;
  const text = document.createElement('span');
  text.textContent = muted ? `${label} off` : `${label} on`;
  button.replaceChildren(muted ? deviceOffIcon(device) : deviceIcon(device), text);
}
