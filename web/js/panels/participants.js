// The People panel: everyone in the session with their role, raised hand and mute state, the
// waiting room, and (for hosts and co-hosts) what they may do to each person. Buttons follow
// permissions.js, a mirror of the server's rules; the server still decides.

import { button, byId, confirmAction, element } from '../dom.js';
import { canActOn, canPublish, canSetRole, hearsAbout, runsSession } from '../permissions.js';
import { deviceOffIcon, handIcon } from '../tile.js';

/** @typedef {import('../call.js').Call} Call */
/** @typedef {import('../protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('../protocol.js').Role} Role */

/** @type {Record<Role, string>} */
const ROLE_LABEL = { host: 'Host', cohost: 'Co-host', speaker: 'Speaker', attendee: 'Attendee' };
/** @type {Record<Role, number>} list order: who runs the session first */
const ROLE_ORDER = { host: 0, cohost: 1, speaker: 2, attendee: 3 };

/**
 * One action button a host may have on a person's row.
 * @typedef {object} Action
 * @property {string} label
 * @property {string} testId
 * @property {() => void} run
 * @property {boolean} [danger]
 */

/**
 * @typedef {object} Row
 * @property {HTMLLIElement} item
 * @property {HTMLElement} name
 * @property {HTMLElement} badge
 * @property {HTMLElement} hand
 * @property {HTMLElement} micOff
 * @property {HTMLElement} cameraOff
 * @property {HTMLElement} actions
 * @property {string} signature the actions last rendered, so a refresh never swaps a button under a click
 */

export class ParticipantsPanel {
  /**
   * @param {Call} call
   * @param {(text: string) => void} notify shows a notice
   */
  constructor(call, notify) {
    /** @private @readonly */
    this.call = call;
    /** @private @readonly */
    this.notify = notify;
    /** @private @readonly */
    this.list = byId('participant-list', HTMLUListElement);
    /** @private @readonly */
    this.waitingSection = byId('waiting-section', HTMLElement);
    /** @private @readonly */
    this.waitingList = byId('waiting-list', HTMLUListElement);
    /** @private @readonly */
    this.count = byId('people-count', HTMLElement);
    /** @private @readonly the audience, on a stage, for those who see it only as a number */
    this.audienceCount = byId('audience-count', HTMLElement);
    /** @private @type {Map<string, Row>} */
    this.rows = new Map();
    /** @private the waiting list last rendered */
    this.waitingSignature = '';
    /** @private @type {Set<string>} who was waiting at the last render, to announce newcomers */
    this.knownWaiting = new Set();
    this.list.replaceChildren();
    this.waitingList.replaceChildren();
  }

  /** How many hands are up and people are waiting, for a badge on the People button. */
  attention() {
    const role = this.call.role;
    if (!role || !runsSession(role)) return 0;
    const hands = [...this.call.participants.values()].filter((p) => p.hand_raised).length;
    return hands + this.call.waiting.length;
  }

  /** Redraws the list from the call's state (rows are kept and updated in place). */
  render() {
    const call = this.call;
    const everyone = [...(call.self ? [call.self] : []), ...call.participants.values()];
    // Hosts first, then speakers; raised hands ahead of the rest of the audience.
    const ordered = everyone
      .map((p, index) => ({ p, index }))
      .sort((a, b) => ROLE_ORDER[a.p.role] - ROLE_ORDER[b.p.role]
        || Number(b.p.hand_raised) - Number(a.p.hand_raised)
        || a.index - b.index)
      .map(({ p }) => p);
    const present = new Set(ordered.map((p) => p.id));
    for (const [id, row] of this.rows) {
      if (present.has(id)) continue;
      row.item.remove();
      this.rows.delete(id);
    }
    ordered.forEach((p, index) => {
      const row = this.rows.get(p.id) ?? this.createRow(p);
      this.updateRow(row, p);
      if (this.list.children[index] !== row.item) this.list.insertBefore(row.item, this.list.children[index] ?? null);
    });
    this.count.textContent = `(${call.headcount()})`;
    this.renderAudience();
    this.renderWaiting();
  }

  /**
   * On a stage, unless we run it, the audience is not listed one by one (the server does not
   * tell us about each attendee): say how many there are instead.
   * @private
   */
  renderAudience() {
    const call = this.call;
    const self = call.self;
    const counted = !!self && !hearsAbout(self.role, 'attendee', call.settings.shape);
    this.audienceCount.hidden = !counted;
    if (!counted) return;
    const n = call.audience;
    const others = self.role === 'attendee' ? n - 1 : n;
    const people = (/** @type {number} */ k) => (k === 1 ? '1 other' : `${k} others`);
    this.audienceCount.textContent = self.role === 'attendee'
      ? (others > 0 ? `You and ${people(others)} in the audience` : 'You are the audience')
      : (n === 1 ? '1 person in the audience' : `${n} people in the audience`);
  }

  /**
   * @private
   * @param {ParticipantInfo} p
   * @returns {Row}
   */
  createRow(p) {
    const item = element('li', 'person');
    item.dataset.testid = 'participant';
    item.dataset.participantId = p.id;
    const line = element('div', 'person-line');
    const name = element('span', 'person-name');
    name.dataset.testid = 'participant-name';
    const badge = element('span', 'badge');
    badge.dataset.testid = 'role-badge';
    const hand = element('span', 'indicator hand');
    hand.dataset.testid = 'hand-raised';
    hand.title = 'Hand raised';
    hand.append(handIcon());
    const micOff = element('span', 'indicator');
    micOff.dataset.testid = 'participant-mic-muted';
    micOff.title = 'Microphone off';
    micOff.append(deviceOffIcon('mic'));
    const cameraOff = element('span', 'indicator');
    cameraOff.dataset.testid = 'participant-camera-off';
    cameraOff.title = 'Camera off';
    cameraOff.append(deviceOffIcon('camera'));
    const actions = element('div', 'person-actions');
    line.append(name, badge, hand, micOff, cameraOff);
    item.append(line, actions);
    /** @type {Row} */
    const row = { item, name, badge, hand, micOff, cameraOff, actions, signature: '' };
    this.rows.set(p.id, row);
    return row;
  }

  /**
   * @private
   * @param {Row} row
   * @param {ParticipantInfo} p
   */
  updateRow(row, p) {
    const isSelf = p.id === this.call.participantId;
    const shape = this.call.settings.shape;
    const publishes = canPublish(p.role, shape);
    row.item.dataset.role = p.role;
    row.item.dataset.self = String(isSelf);
    row.item.dataset.handRaised = String(p.hand_raised);
    row.item.dataset.audioMuted = String(p.audio_muted);
    row.item.dataset.videoMuted = String(p.video_muted);
    row.name.textContent = isSelf ? `${p.name} (you)` : p.name;
    row.badge.textContent = ROLE_LABEL[p.role];
    row.badge.dataset.role = p.role;
    row.hand.hidden = !p.hand_raised;
    // Someone in the audience sends nothing: a crossed-out mic would only be noise.
    row.micOff.hidden = !publishes || !p.audio_muted;
    row.cameraOff.hidden = !publishes || !p.video_muted;
    const actions = isSelf ? [] : this.actionsFor(p);
    const signature = actions.map((a) => a.testId).join(' ');
    if (signature === row.signature) return;
    row.signature = signature;
    row.actions.replaceChildren(...actions.map((a) => button(a.label, a.testId, a.run, a.danger ? 'small danger' : 'small')));
    row.actions.hidden = actions.length === 0;
  }

  /**
   * What we may do to `p`, by the same rules the server applies.
   * @private
   * @param {ParticipantInfo} p
   * @returns {Action[]}
   */
  actionsFor(p) {
    const call = this.call;
    const me = call.role;
    if (!me || !canActOn(me, p.role)) return [];
    const shape = call.settings.shape;
    /** @type {Action[]} */
    const actions = [];
    if (canPublish(p.role, shape) && !p.audio_muted) {
      actions.push({ label: 'Mute mic', testId: 'action-mute-mic', run: () => call.requests.muteParticipant(p.id, 'audio') });
    }
    if (canPublish(p.role, shape) && !p.video_muted) {
      actions.push({ label: 'Turn off camera', testId: 'action-mute-camera', run: () => call.requests.muteParticipant(p.id, 'video') });
    }
    if (shape === 'stage' && p.role === 'attendee' && canSetRole(me, p.role, 'speaker')) {
      actions.push({ label: 'Bring on stage', testId: 'action-stage-on', run: () => call.requests.setRole(p.id, 'speaker') });
    }
    if (shape === 'stage' && p.role === 'speaker' && canSetRole(me, p.role, 'attendee')) {
      actions.push({ label: 'Take off stage', testId: 'action-stage-off', run: () => call.requests.setRole(p.id, 'attendee') });
    }
    if (p.role !== 'cohost' && canSetRole(me, p.role, 'cohost')) {
      actions.push({ label: 'Make co-host', testId: 'action-make-cohost', run: () => call.requests.setRole(p.id, 'cohost') });
    }
    // A co-host who stops being one stays on stage in a stage session.
    const demoted = shape === 'stage' ? 'speaker' : 'attendee';
    if (p.role === 'cohost' && canSetRole(me, p.role, demoted)) {
      actions.push({ label: 'Remove co-host', testId: 'action-remove-cohost', run: () => call.requests.setRole(p.id, demoted) });
    }
    actions.push({
      label: 'Remove',
      testId: 'action-remove',
      danger: true,
      run: () => {
        void confirmAction(`Remove ${p.name} from the session? They will not be able to come back with their link.`, 'Remove')
          .then((ok) => {
            if (ok) call.requests.removeParticipant(p.id);
          });
      },
    });
    return actions;
  }

  /** @private */
  renderWaiting() {
    const call = this.call;
    const role = call.role;
    const show = role !== null && runsSession(role) && call.waiting.length > 0;
    this.waitingSection.hidden = !show;
    // Rebuilt only when the list changed, so a refresh never swaps a button under a click.
    const signature = show ? call.waiting.map((w) => w.id).join(' ') : '';
    if (signature === this.waitingSignature) return;
    this.waitingSignature = signature;
    const items = (show ? call.waiting : []).map((w) => {
      const item = element('li', 'person');
      item.dataset.testid = 'waiting-person';
      item.dataset.participantId = w.id;
      const line = element('div', 'person-line');
      const name = element('span', 'person-name', w.name);
      name.dataset.testid = 'waiting-name';
      line.append(name);
      const actions = element('div', 'person-actions');
      actions.append(
        button('Admit', 'waiting-admit', () => call.requests.admit(w.id), 'small primary'),
        button('Decline', 'waiting-decline', () => call.requests.decline(w.id), 'small'),
      );
      item.append(line, actions);
      return item;
    });
    this.waitingList.replaceChildren(...items);
    const now = new Set(call.waiting.map((w) => w.id));
    for (const w of show ? call.waiting : []) {
      if (!this.knownWaiting.has(w.id)) this.notify(`${w.name} is waiting to join.`);
    }
    this.knownWaiting = now;
  }
}
