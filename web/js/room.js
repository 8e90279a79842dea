// The room page: tiles (cameras and shared screens), the control bar, the side panels and
// notices. Drives a Call through its methods and renders its events; it never sees the
// WebSocket or the peer connections.

import { Controls } from './controls.js';
import { byId } from './dom.js';
import { ChatPanel } from './panels/chat.js';
import { ParticipantsPanel } from './panels/participants.js';
import { SettingsPanel } from './panels/settings.js';
import { canPublish, runsSession } from './permissions.js';
import { RecordingControls } from './recording.js';
import { Tile } from './tile.js';
import { ViewReporter } from './views.js';

/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./controls.js').PanelName} PanelName */

/**
 * What a test (or a curious user) can read about a tile.
 * @typedef {object} TileState
 * @property {string} participantId
 * @property {string} name
 * @property {boolean} local
 * @property {boolean} screen
 * @property {boolean} audioMuted
 * @property {boolean} videoMuted
 * @property {number} videoWidth
 * @property {number} videoHeight
 * @property {boolean} speaking
 * @property {boolean} activeSpeaker
 */

/** How long a notice stays on screen. */
const NOTICE_MS = 8_000;

export class RoomView {
  /**
   * @param {Call} call
   * @param {string} name our display name
   */
  constructor(call, name) {
    /** @private @readonly */
    this.call = call;
    /** @private @readonly */
    this.name = name;
    /** @private @readonly */
    this.el = {
      status: byId('room-status', HTMLElement),
      notices: byId('notices', HTMLElement),
      tiles: byId('tiles', HTMLElement),
      screens: byId('screens', HTMLElement),
      title: byId('room-title', HTMLElement),
      count: byId('room-count', HTMLElement),
      shape: byId('room-shape', HTMLElement),
      locked: byId('room-locked', HTMLElement),
      audienceNote: byId('audience-note', HTMLElement),
      chatUnread: byId('chat-unread', HTMLElement),
      people: byId('people-button', HTMLButtonElement),
      /** @type {Record<PanelName, HTMLElement>} */
      panels: {
        people: byId('people-panel', HTMLElement),
        chat: byId('chat-panel', HTMLElement),
        settings: byId('settings-panel', HTMLElement),
      },
    };
    /** @private @type {Map<string, Tile>} remote camera tiles by participant id */
    this.tiles = new Map();
    /** @private @type {Map<string, Tile>} remote screen tiles by participant id */
    this.screenTiles = new Map();
    /** @private @type {Tile | null} our camera preview, while we publish */
    this.localTile = null;
    /** @private @type {Tile | null} our shared screen */
    this.localScreenTile = null;
    /** @private @type {PanelName | null} */
    this.openPanel = null;
    /** @private @readonly removes every DOM listener at once on destroy */
    this.listeners = new AbortController();
    /** @private @type {(() => void)[]} */
    this.unsubscribe = [];
    /** @private a redraw is due at the next frame */
    this.renderQueued = false;
    /** @private @readonly tells the server how large each remote video is shown */
    this.views = new ViewReporter((trackId, width, height) => call.showTrack(trackId, width, height));

    const el = this.el;
    el.tiles.replaceChildren();
    el.screens.replaceChildren();
    el.notices.replaceChildren();
    el.status.textContent = 'Connecting…';
    el.count.textContent = '';
    el.shape.hidden = true;
    el.locked.hidden = true;
    el.audienceNote.hidden = true;
    for (const panel of Object.values(el.panels)) panel.hidden = true;

    const signal = this.listeners.signal;
    /** @private @readonly */
    this.controls = new Controls(call, {
      togglePanel: (panel) => this.setPanel(this.openPanel === panel ? null : panel),
      enableSound: () => {
        // This click is the gesture the browser wanted: unmute and play every remote tile.
        for (const tile of this.tiles.values()) {
          tile.video.muted = false;
          tile.play();
        }
      },
    }, signal);
    /** @private @readonly */
    this.people = new ParticipantsPanel(call, (text) => this.notice(text));
    /** @private @readonly */
    this.chat = new ChatPanel(call, (unread) => {
      el.chatUnread.textContent = String(unread);
      el.chatUnread.hidden = unread === 0;
    }, signal);
    /** @private @readonly */
    this.settings = new SettingsPanel(call, signal);
    /** @private @readonly */
    this.recording = new RecordingControls(call, (text) => this.notice(text), signal);
    this.bindCall();
    this.render();
  }

  /** @returns {TileState[]} every tile on the page, ours first */
  tileStates() {
    const local = [this.localTile, this.localScreenTile].filter((tile) => tile !== null);
    return [...local, ...this.tiles.values(), ...this.screenTiles.values()].map((tile) => ({
      participantId: tile.element.dataset.participantId ?? tile.participantId,
      name: tile.name,
      local: local.includes(tile),
      screen: tile.element.classList.contains('screen'),
      audioMuted: tile.element.dataset.audioMuted === 'true',
      videoMuted: tile.element.dataset.videoMuted === 'true',
      videoWidth: tile.video.videoWidth,
      videoHeight: tile.video.videoHeight,
      speaking: tile.element.dataset.speaking === 'true',
      activeSpeaker: tile.element.dataset.activeSpeaker === 'true',
    }));
  }

  /** Detaches from the call and the page. */
  destroy() {
    this.listeners.abort();
    this.renderQueued = true; // no redraw after this
    for (const off of this.unsubscribe) off();
    this.views.close();
    for (const tile of [...this.tiles.values(), ...this.screenTiles.values()]) tile.remove();
    this.tiles.clear();
    this.screenTiles.clear();
    this.localTile?.remove();
    this.localScreenTile?.remove();
    for (const panel of Object.values(this.el.panels)) panel.hidden = true;
  }

  /** @private */
  bindCall() {
    const call = this.call;
    const refresh = () => this.render();
    // A crowd arriving brings a host hundreds of these a second, and each redraw walks every
    // row and tile: redraw once per frame instead of once per message.
    const refreshSoon = () => this.renderSoon();
    this.unsubscribe.push(
      call.on('joined', ({ session }) => {
        this.views.forget();
        this.el.status.textContent = '';
        this.el.title.textContent = session.title;
        document.title = `${session.title} · Hearth`;
        this.chat.renderAll();
        refresh();
      }),
      call.on('participant_added', refreshSoon),
      call.on('participant_changed', refreshSoon),
      call.on('participant_removed', refreshSoon),
      call.on('self', refresh),
      call.on('settings', () => {
        this.settings.settled();
        refresh();
      }),
      call.on('waiting_list', refresh),
      call.on('audience', refreshSoon),
      call.on('media', (participantId) => this.renderMedia(participantId)),
      call.on('local', refresh),
      call.on('invite', () => {
        this.notice('A new invite link was made; the old one no longer works.');
        refresh();
      }),
      call.on('chat', (message) => this.chat.append(message)),
      call.on('refused', () => {
        this.settings.settled();
        refresh();
      }),
      call.on('notice', (text) => this.notice(text)),
      call.on('speakers', () => this.renderSpeakers()),
      call.on('reconnecting', (reconnecting) => {
        // Tiles and media stay as they are: only the signaling is gone, and the user should
        // know why chat and host actions wait.
        this.el.status.textContent = reconnecting ? 'Reconnecting…' : '';
        this.el.status.dataset.state = reconnecting ? 'reconnecting' : '';
        this.chat.setOnline(!reconnecting);
      }),
    );
  }

  /**
   * @private
   * @param {PanelName | null} panel
   */
  setPanel(panel) {
    const role = this.call.role;
    if (panel === 'settings' && !(role && runsSession(role))) panel = null;
    this.openPanel = panel;
    for (const [name, element] of Object.entries(this.el.panels)) element.hidden = name !== panel;
    this.controls.setOpenPanel(panel);
    this.chat.setOpen(panel === 'chat');
  }

  /** @private redraws at the next frame, once however many changes arrive before it */
  renderSoon() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      if (!this.listeners.signal.aborted) {
        this.renderQueued = false;
        this.render();
      }
    });
  }

  /** @private brings the whole page in line with the call */
  render() {
    const call = this.call;
    const shape = call.settings.shape;
    if (call.status === 'joined') {
      this.el.shape.hidden = false;
      this.el.shape.textContent = shape === 'stage' ? 'Stage' : 'Room';
      this.el.locked.hidden = !call.settings.locked;
    }
    this.renderTiles();
    this.renderLocal();
    this.controls.render();
    this.recording.render();
    this.people.render();
    this.settings.render();
    if (this.openPanel === 'settings') this.setPanel('settings');
    const attention = this.people.attention();
    this.el.people.dataset.attention = String(attention);
    this.el.people.title = attention > 0 ? `${attention} waiting or with a hand up` : 'People';
    this.el.audienceNote.hidden = !(call.status === 'joined' && call.role && !canPublish(call.role, shape));
    const n = call.headcount();
    this.el.count.textContent = call.status !== 'joined' ? '' : n === 1 ? 'Only you' : `${n} people`;
  }

  /**
   * A camera tile for everyone who may publish (on a stage: hosts and speakers) or does; the
   * audience is listed in the People panel only.
   * @private
   */
  renderTiles() {
    const call = this.call;
    const publishers = call.remote.publishers();
    for (const participant of call.participants.values()) {
      const onStage = canPublish(participant.role, call.settings.shape) || publishers.has(participant.id);
      if (onStage) this.addTile(participant);
      else this.removeTile(participant.id);
    }
    for (const id of [...this.tiles.keys(), ...this.screenTiles.keys()]) {
      if (!call.participants.has(id)) this.removeTile(id);
    }
    this.el.tiles.dataset.count = String(this.tiles.size + (this.localTile ? 1 : 0));
  }

  /**
   * @private
   * @param {ParticipantInfo} participant
   */
  addTile(participant) {
    let tile = this.tiles.get(participant.id);
    if (!tile) {
      tile = new Tile({
        participantId: participant.id,
        name: participant.name,
        local: false,
        onAutoplayBlocked: () => this.controls.offerSound(),
      });
      this.tiles.set(participant.id, tile);
      this.el.tiles.append(tile.element);
      this.markSpeaker(tile, participant.id);
    }
    tile.setMuted(participant.audio_muted, participant.video_muted);
    tile.setHand(participant.hand_raised);
    this.renderMedia(participant.id);
  }

  /**
   * @private
   * @param {string} participantId
   */
  removeTile(participantId) {
    for (const tiles of [this.tiles, this.screenTiles]) {
      const tile = tiles.get(participantId);
      if (!tile) continue;
      this.views.unwatch(tile.video);
      tile.remove();
      tiles.delete(participantId);
    }
  }

  /**
   * Attaches what we receive from someone to their tiles, adding or removing their screen tile.
   * @private
   * @param {string} participantId
   */
  renderMedia(participantId) {
    const participant = this.call.participants.get(participantId);
    if (!participant) return;
    const media = this.call.remote.mediaOf(participantId);
    const tile = this.tiles.get(participantId);
    if (!tile && (media.camera?.getTracks().length ?? 0) > 0) {
      this.addTile(participant);
      return;
    }
    tile?.setStream(media.camera);
    if (tile) this.views.watch(tile.video);
    let screen = this.screenTiles.get(participantId);
    if (media.screen && !screen) {
      screen = new Tile({ participantId, name: participant.name, local: false, screen: true });
      // A screen has no sound; muted, it may autoplay without a gesture.
      screen.video.muted = true;
      this.screenTiles.set(participantId, screen);
      this.el.screens.append(screen.element);
    }
    if (media.screen && screen) {
      screen.setStream(media.screen);
      this.views.watch(screen.video);
    } else if (screen) {
      this.views.unwatch(screen.video);
      screen.remove();
      this.screenTiles.delete(participantId);
    }
  }

  /** @private our own preview and screen, while we publish */
  renderLocal() {
    const publisher = this.call.publisher;
    if (publisher.allowed && !this.localTile) {
      this.localTile = new Tile({ participantId: this.call.participantId ?? 'local', name: this.name, local: true });
      this.el.tiles.prepend(this.localTile.element);
      if (this.call.participantId) this.markSpeaker(this.localTile, this.call.participantId);
    } else if (!publisher.allowed && this.localTile) {
      this.localTile.remove();
      this.localTile = null;
    }
    if (this.localTile) {
      this.localTile.setStream(publisher.stream);
      this.localTile.setMuted(publisher.isMuted('audio'), publisher.isMuted('video'));
      this.localTile.setHand(false);
      if (this.call.participantId) this.localTile.element.dataset.participantId = this.call.participantId;
    }
    if (publisher.screen && !this.localScreenTile) {
      this.localScreenTile = new Tile({ participantId: this.call.participantId ?? 'local', name: this.name, local: true, screen: true });
      this.el.screens.prepend(this.localScreenTile.element);
    } else if (!publisher.screen && this.localScreenTile) {
      this.localScreenTile.remove();
      this.localScreenTile = null;
    }
    if (this.localScreenTile && publisher.screen) {
      const current = this.localScreenTile.video.srcObject;
      const same = current instanceof MediaStream && current.getVideoTracks()[0] === publisher.screen;
      if (!same) this.localScreenTile.setStream(new MediaStream([publisher.screen]));
    }
  }

  /**
   * Highlights the camera tiles of whoever speaks, ours included (the server hears us too).
   * Screen tiles stay as they are: a screen does not speak. Where the floor holder's tile
   * goes is up to the stylesheet, which moves it first only in grids big enough to hide it.
   * @private
   */
  renderSpeakers() {
    for (const [id, tile] of this.tiles) this.markSpeaker(tile, id);
    const self = this.call.participantId;
    if (this.localTile && self) this.markSpeaker(this.localTile, self);
  }

  /**
   * @private
   * @param {Tile} tile
   * @param {string} participantId
   */
  markSpeaker(tile, participantId) {
    const { active, speaking } = this.call.speakers;
    tile.setSpeaking(speaking.includes(participantId), active === participantId);
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
