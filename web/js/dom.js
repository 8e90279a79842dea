// Small DOM helpers shared by the page modules.

/**
 * The element with this id, checked to be of the expected type: a missing element is a bug in
 * the page's HTML, reported at start-up rather than as a null dereference later.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`the page lacks #${id}`);
  return element;
}

/**
 * A new element with a class and optional text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A button with a test id.
 * @param {string} label
 * @param {string} testId
 * @param {() => void} onClick
 * @param {string} [className]
 * @returns {HTMLButtonElement}
 */
export function button(label, testId, onClick, className) {
  const node = element('button', className, label);
  node.type = 'button';
  node.dataset.testid = testId;
  node.addEventListener('click', onClick);
  return node;
}

/**
 * Asks the user to confirm a destructive action, with the page's own dialog (a native
 * `confirm()` blocks the page, and with it the call).
 * @param {string} text
 * @param {string} okLabel what the confirming button says, e.g. "Remove"
 * @returns {Promise<boolean>}
 */
export function confirmAction(text, okLabel) {
  const dialog = byId('confirm-dialog', HTMLDialogElement);
  byId('confirm-text', HTMLElement).textContent = text;
  byId('confirm-ok', HTMLButtonElement).textContent = okLabel;
  if (dialog.open) return Promise.resolve(false);
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

/**
 * Copies the text of a (read-only) input to the clipboard, and leaves it selected so the user
 * can copy it by hand when the browser would not.
 * @param {HTMLInputElement} input
 * @returns {Promise<boolean>} whether it was copied
 */
export async function copyFrom(input) {
  let copied = false;
  // The async clipboard exists only in secure contexts (https, localhost); on plain http
  // the text stays visible and selected so the user can copy it themselves.
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    } catch {
      // Refused (no focus, no permission): fall through to the manual way.
    }
  }
  input.focus();
  input.select();
  if (!copied) {
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
  }
  return copied;
}

/**
 * The parts of a page that can give way to a message (a bad link, a failure).
 * @typedef {object} PageParts
 * @property {HTMLElement} loading
 * @property {HTMLElement} view
 * @property {HTMLElement} message
 * @property {HTMLElement} messageTitle
 * @property {HTMLElement} messageText
 */

/**
 * Replaces a page's content with a message, and titles the tab after it.
 * @param {PageParts} parts
 * @param {string} title
 * @param {string} text
 */
export function showPageMessage(parts, title, text) {
  parts.loading.hidden = true;
  parts.view.hidden = true;
  parts.messageTitle.textContent = title;
  parts.messageText.textContent = text;
  parts.message.hidden = false;
  document.title = `${title} · Hearth`;
}
