// The app shell every page uses: the signed-in student, mounting a page's
// <template>, navigation, the toast, form errors and small DOM helpers.
import { api, ApiError } from './api.js';

const view = document.getElementById('view');
let me = null;
/** Undoes what the current page set up (sockets, timers) when the route changes. */
let leavePage = null;

/** The signed-in student (`GET /api/users/me`), or null. */
export function currentUser() {
  return me;
}

export function setCurrentUser(user) {
  me = user;
}

/** Asks the server who is signed in; null when nobody is. */
export async function loadCurrentUser() {
  try {
    me = await api('GET', '/api/users/me');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    me = null;
  }
  return me;
}

/** Replaces the view with the template `id`; returns the view. */
export function mount(id) {
  view.replaceChildren(document.getElementById(id).content.cloneNode(true));
  return view;
}

/** Shows `route` (`#/route`), drawing it again if it is the current one. */
export function go(route) {
  if (location.hash !== `#/${route}`) location.hash = `#/${route}`;
  else window.dispatchEvent(new HashChangeEvent('hashchange'));
}

/** Runs `fn` when the page is left. */
export function onLeave(fn) {
  leavePage = fn;
}

/** Leaves the current page (the router calls this before drawing the next). */
export function leave() {
  leavePage?.();
  leavePage = null;
}

export function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 2500);
}

export function showError(err) {
  toast(err.message || String(err));
}

/** Shows a problem on a form: the detail, and each field's message beside its input. */
export function showProblem(form, err) {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const box = form.querySelector('.form-error');
  const errors = err.errors || [];
  box.hidden = false;
  // The API's summary of field errors points at its `errors` list; say it for people instead.
  box.textContent = errors.length && /`errors`/.test(err.message) ? 'Please check the highlighted fields.' : err.message;
  for (const { field, message } of errors) {
    const input = form.elements[field];
    const target = input instanceof Element ? input : form.querySelector('#windows');
    if (!target) continue;
    target.setAttribute('aria-invalid', 'true');
    const note = document.createElement('small');
    note.className = 'field-error';
    note.textContent = message;
    target.insertAdjacentElement('afterend', note);
  }
}

/** Hides a form's problem again. */
export function clearProblem(form) {
  form.querySelector('.form-error').hidden = true;
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** Runs `handler(formData)` on submit, with the button disabled meanwhile and problems shown on the form. */
export function onSubmit(form, handler) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await handler(new FormData(form));
    } catch (err) {
      showProblem(form, err);
    } finally {
      button.disabled = false;
    }
  });
}

/** `<tag class=className>text</tag>`. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function badge(text, kind = '') {
  return el('span', `badge ${kind}`.trim(), text);
}

export function button(text, className, onClick) {
  const node = el('button', className, text);
  node.type = 'button';
  node.addEventListener('click', onClick);
  return node;
}

export function emptyItem(text) {
  return el('li', 'empty', text);
}

export function initials(name) {
  return name.trim().charAt(0).toUpperCase() || '?';
}
