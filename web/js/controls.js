// The control bar under the tiles: microphone, camera, screen, hand, the side-panel toggles,
// invite and leave. Each button shows only when it can do something for us now (our role and
// the session's shape, as the server last told us); the server still checks every action.

import { deviceIcon, deviceOffIcon, handIcon } from './tile.js';
import { byId, copyFrom } from './dom.js';
import { canRaiseHand, runsSession } from './permissions.js';

/** @typedef {import('./call.js').Call} Call */
/** @typedef {'people' | 'chat' | 'settings'} PanelName */

/**
 * @typedef {object} ControlHooks
 * @property {(panel: PanelName) => void} togglePanel
 * @property {() => void} enableSound the user asked for sound the browser held back
 */

export class Controls {
  /**
   * @param {Call} call
   * @param {ControlHooks} hooks
   * @param {AbortSignal} signal removes the listeners
   */
  constructor(call, hooks, signal) {
    /** @private @readonly */
    this.call = call;
    /** @private @readonly */
    this.el = {
      mic: byId('mic-button', HTMLButtonElement),
      camera: byId('camera-button', HTMLButtonElement),
      screen: byId('screen-button', HTMLButtonElement),
      hand: byId('hand-button', HTMLButtonElement),
      people: byId('people-button', HTMLButtonElement),
      chat: byId('chat-button', HTMLButtonElement),
      settings: byId('settings-button', HTMLButtonElement),
      invite: byId('invite-button', HTMLButtonElement),
      sound: byId('sound-button', HTMLButtonElement),
      leave: byId('leave-button', HTMLButtonElement),
      invitePanel: byId('invite-panel', HTMLElement),
      inviteLink: byId('invite-link', HTMLInputElement),
      inviteStatus: byId('invite-status', HTMLElement),
    };
    const el = this.el;
    el.invitePanel.hidden = true;
    el.sound.hidden = true;
    const publisher = call.publisher;
    /** @type {[HTMLButtonElement, () => void][]} */
    const actions = [
      [el.mic, () => call.setMuted('audio', !publisher.isMuted('audio'))],
      [el.camera, () => call.setMuted('video', !publisher.isMuted('video'))],
      [el.screen, () => (publisher.screen ? publisher.stopScreen() : void publisher.startScreen())],
      [el.hand, () => call.requests.raiseHand(!call.self?.hand_raised)],
      [el.people, () => hooks.togglePanel('people')],
      [el.chat, () => hooks.togglePanel('chat')],
      [el.settings, () => hooks.togglePanel('settings')],
      [el.invite, () => void this.showInvite()],
      [el.leave, () => call.leave()],
      [el.sound, () => {
        el.sound.hidden = true;
        hooks.enableSound();
      }],
    ];
    for (const [button, action] of actions) button.addEventListener('click', action, { signal });
    this.render();
  }

  /** Shows the button that lets the user allow sound (after the browser blocked autoplay). */
  offerSound() {
    this.el.sound.hidden = false;
  }

  /**
   * Marks which side panel is open.
   * @param {PanelName | null} open
   */
  setOpenPanel(open) {
    for (const name of /** @type {PanelName[]} */ (['people', 'chat', 'settings'])) {
      this.el[name].setAttribute('aria-pressed', String(open === name));
    }
  }

  /** Brings every button in line with the call's state. */
  render() {
    const { call, el } = this;
    const publisher = call.publisher;
    const role = call.role;
    const publishing = publisher.allowed;
    el.mic.hidden = !publishing;
    el.camera.hidden = !publishing;
    renderToggle(el.mic, 'mic', 'Mic', publisher.isMuted('audio'), publisher.track('audio') !== null, publisher.opening);
    renderToggle(el.camera, 'camera', 'Camera', publisher.isMuted('video'), publisher.track('video') !== null, publisher.opening);

    el.screen.hidden = !publishing || !navigator.mediaDevices?.getDisplayMedia;
    const sharing = publisher.screen !== null;
    el.screen.setAttribute('aria-pressed', String(sharing));
    el.screen.dataset.sharing = String(sharing);
    el.screen.textContent = sharing ? 'Stop sharing' : 'Share screen';

    const raised = call.self?.hand_raised ?? false;
    el.hand.hidden = !role || !canRaiseHand(role, call.settings.shape);
    el.hand.setAttribute('aria-pressed', String(raised));
    el.hand.dataset.raised = String(raised);
    const label = document.createElement('span');
    label.textContent = raised ? 'Lower hand' : 'Raise hand';
    el.hand.replaceChildren(handIcon(), label);

    const runs = role !== null && runsSession(role);
    el.settings.hidden = !runs;
    el.invite.hidden = !runs || !call.inviteUrl;
    if (!runs || !call.inviteUrl) el.invitePanel.hidden = true;
    // A rotated link replaces the one on screen, so nobody copies a dead link.
    if (!el.invitePanel.hidden && call.inviteUrl && el.inviteLink.value !== call.inviteUrl) {
      el.inviteLink.value = call.inviteUrl;
      el.inviteStatus.textContent = 'New link: the old one no longer works';
      el.inviteStatus.dataset.copied = 'false';
    }
  }

  /** @private shows the invite link and copies it when the browser lets us */
  async showInvite() {
    const url = this.call.inviteUrl;
    if (!url) return;
    const { invitePanel, inviteLink, inviteStatus } = this.el;
    invitePanel.hidden = false;
    inviteLink.value = url;
    inviteStatus.textContent = '';
    const copied = await copyFrom(inviteLink);
    inviteStatus.textContent = copied ? 'Copied to clipboard' : 'Select and copy the link';
    inviteStatus.dataset.copied = String(copied);
  }
}

/**
 * @param {HTMLButtonElement} button
 * @param {'mic' | 'camera'} device
 * @param {string} label
 * @param {boolean} muted
 * @param {boolean} available
 * @param {boolean} opening the devices are being opened
 */
function renderToggle(button, device, label, muted, available, opening) {
  button.disabled = !available;
  button.setAttribute('aria-pressed', String(muted));
  button.dataset.muted = String(muted);
  const lower = label.toLowerCase();
  button.title = opening ? `Opening the ${lower}…` : !available ? `No ${lower}` : muted ? `Turn ${lower} on` : `Turn ${lower} off`;
  const text = document.createElement('span');
  text.textContent = muted ? `${label} off` : `${label} on`;
  button.replaceChildren(muted ? deviceOffIcon(device) : deviceIcon(device), text);
}
