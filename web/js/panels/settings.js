// The Host settings panel: room or stage, lock, waiting room, a new invite link, ending the
// session. Controls show the server's settings; a change is sent and the control waits
// (disabled) until the server's `settings_updated`, or a refusal, says how things stand.

import { byId, confirmAction } from '../dom.js';
import { canEndSession, runsSession } from '../permissions.js';

/** @typedef {import('../call.js').Call} Call */

export class SettingsPanel {
  /**
   * @param {Call} call
   * @param {AbortSignal} signal removes the listeners
   */
  constructor(call, signal) {
    /** @private @readonly */
    this.call = call;
    /** @private @readonly */
    this.el = {
      shape: byId('settings-shape', HTMLSelectElement),
      locked: byId('settings-locked', HTMLInputElement),
      waitingRoom: byId('settings-waiting-room', HTMLInputElement),
      rotate: byId('rotate-invite', HTMLButtonElement),
      end: byId('end-session', HTMLButtonElement),
    };
    /** @private @type {Set<HTMLSelectElement | HTMLInputElement>} changed by the user, not yet confirmed */
    this.pending = new Set();
    const el = this.el;
    /**
     * @param {HTMLSelectElement | HTMLInputElement} control
     * @param {() => import('../protocol.js').SettingsChange} change
     */
    const onChange = (control, change) => control.addEventListener('change', () => {
      this.pending.add(control);
      control.disabled = true;
      call.requests.updateSettings(change());
    }, { signal });
    onChange(el.shape, () => ({ shape: el.shape.value === 'stage' ? 'stage' : 'room' }));
    onChange(el.locked, () => ({ locked: el.locked.checked }));
    onChange(el.waitingRoom, () => ({ waiting_room: el.waitingRoom.checked }));
    el.rotate.addEventListener('click', () => {
      void confirmAction('Make a new invite link? The current one stops working; people already here stay.', 'New link')
        .then((ok) => {
          if (ok) call.requests.rotateInvite();
        });
    }, { signal });
    el.end.addEventListener('click', () => {
      void confirmAction('End the session for everyone? Its links stop working.', 'End session')
        .then((ok) => {
          if (ok) call.requests.endSession();
        });
    }, { signal });
    this.render();
  }

  /** The server answered (new settings, or a refusal): show its word on every control. */
  settled() {
    this.pending.clear();
    this.render();
  }

  /**
   * Shows the server's settings and enables what our role may change. A control the user just
   * changed keeps the user's value, disabled, until the server answers.
   */
  render() {
    const { call, el } = this;
    const settings = call.settings;
    const role = call.role;
    const runs = role !== null && runsSession(role);
    if (!this.pending.has(el.shape)) el.shape.value = settings.shape;
    if (!this.pending.has(el.locked)) el.locked.checked = settings.locked;
    if (!this.pending.has(el.waitingRoom)) el.waitingRoom.checked = settings.waiting_room;
    for (const control of [el.shape, el.locked, el.waitingRoom]) control.disabled = !runs || this.pending.has(control);
    el.rotate.disabled = !runs;
    el.end.hidden = role === null || !canEndSession(role);
  }
}
