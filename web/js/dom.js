// Small DOM helpers shared by the page modules.

/**
 * The element with this id, checked to be of the expected type: a missing element is a bug in
 * index.html, reported at start-up rather than as a null dereference later.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`index.html lacks #${id}`);
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
