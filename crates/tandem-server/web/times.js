// Dates and times as the pages show them, in the browser's time zone.

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
export const monthFormat = new Intl.DateTimeFormat(undefined, { month: 'short' });

/** "Thu, 26 Nov · 14:00 – 15:30" in the browser's time zone. */
export function describeTimes(s) {
  const start = new Date(s.starts_at);
  const end = new Date(s.ends_at);
  const until = start.toDateString() === end.toDateString()
    ? timeFormat.format(end) : `${dayFormat.format(end)}, ${timeFormat.format(end)}`;
  return `${dayFormat.format(start)} · ${timeFormat.format(start)} – ${until}`;
}

/** The value a `datetime-local` input needs to show `date` in local time. */
export function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
    + `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** cancelled, ended, live or upcoming. */
export function roomState(s, now = Date.now()) {
  if (s.status === 'cancelled') return 'cancelled';
  if (Date.parse(s.ends_at) <= now) return 'ended';
  if (Date.parse(s.starts_at) <= now) return 'live';
  return 'upcoming';
}

const chatTime = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const chatDay = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });

export function describeChatTime(iso) {
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? chatTime.format(d) : `${chatDay.format(d)}, ${chatTime.format(d)}`;
}
