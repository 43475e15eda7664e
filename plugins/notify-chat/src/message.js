// What notify-chat sends and how it reads the answer: plain functions, no host imports, so they
// run under Node.js too (`npm test`), as well as inside the component.

/** Currencies whose minor unit is not a hundredth (ISO 4217), as the host formats them. */
const EXPONENT = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0,
  VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  CLF: 4, UYW: 4,
};

/** What each event the host announces is called in the channel; any other shows its own name. */
const TITLES = {
  order_submitted: 'Order submitted',
  stage_opened: 'Approval needed',
  stage_escalated: 'Approval overdue, escalated',
  order_approved: 'Order approved',
  order_rejected: 'Order rejected',
  order_held: 'Order on hold',
  order_released: 'Order released to the ERP',
  subscription_deactivated: 'Subscription deactivated',
  subscription_reactivated: 'Subscription reactivated',
  policy_drift: 'Rules changed since the order was evaluated',
};

/** Slack's limits on a block's text: longer text makes it refuse the whole message. */
const HEADER_MAX = 150;
const FIELD_MAX = 2000;
const SECTION_MAX = 3000;

/**
 * An amount of minor units for people, as the host writes it: `1,234.50 EUR`, `-7 JPY`.
 * Amounts arrive as JavaScript numbers, exact up to 2^53; the host keeps them below 10^15.
 */
export function money(minor, currency) {
  const exp = EXPONENT[currency] ?? 2;
  const unit = 10 ** exp;
  const abs = Math.abs(minor);
  const major = String(Math.floor(abs / unit)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const fraction = exp === 0 ? '' : '.' + String(abs % unit).padStart(exp, '0');
  return `${minor < 0 ? '-' : ''}${major}${fraction} ${currency}`;
}

/** UTF-8 bytes of a string (QuickJS has no `TextEncoder`). */
export function utf8(text) {
  const bytes = [];
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return new Uint8Array(bytes);
}

/** The start of an answer's body, for a message: ASCII kept, anything else shown as `?`. */
export function gist(bytes) {
  let text = '';
  for (const b of bytes.slice(0, 200)) text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '?';
  return text;
}

/** Text for Slack's `mrkdwn`: the three characters it reserves, escaped as it asks. */
export function escape(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * At most `max` characters (code points) of `text`, escaped when `escaping`, cut with `…`
 * where it is too long; an escape is never split.
 */
export function clip(text, max, escaping = true) {
  let out = '';
  let length = 0;
  for (const ch of String(text)) {
    const piece = escaping ? escape(ch) : ch;
    if (length + piece.length > max - 1) return out + '…';
    out += piece;
    length += piece.length;
  }
  return out;
}

/** Whether the channel's `events` setting (empty or absent: all) includes the event. */
export function subscribed(settings, event) {
  const events = Array.isArray(settings.events) ? settings.events : [];
  return events.length === 0 || events.includes(event);
}

/**
 * The notify-error for a request the host could not make. The host's `http-error` arrives as
 * the `payload` of the error the import throws: `{ tag: 'denied' | 'timeout' | 'too-large' |
 * 'failed', val }`. A denied origin needs an admin's grant, so retrying would not help.
 */
export function sendFailure(e) {
  const err = e && typeof e === 'object' && 'payload' in e ? e.payload : e;
  const why = err && err.tag ? `${err.tag}${err.val ? `: ${err.val}` : ''}` : String(err);
  if (err && err.tag === 'denied') {
    return permanent(`the host refused the chat webhook's origin (${why}); grant it to notify-chat`);
  }
  return temporary(`the chat webhook could not be reached (${why})`);
}

/** The message for one notification: Slack's incoming-webhook JSON. */
export function message(n, settings) {
  const order = n.order;
  const title = TITLES[n.event] ?? n.event;
  const total = money(order.totalMinor, order.currency);
  const base = (settings.dashboard_url ?? '').replace(/\/+$/, '');
  const link = base ? `<${base}/orders/${encodeURIComponent(order.id)}|${escape(order.id)}>` : escape(order.id);
  const field = (name, value) => `*${name}*\n${clip(value, FIELD_MAX - name.length - 3)}`;
  const fields = [`*Order*\n${link}`, field('Total', total), field('Requester', order.requester), field('Status', order.status)];
  if (order.costCenter) fields.push(field('Cost center', order.costCenter));
  if (order.department) fields.push(field('Department', order.department));
  const blocks = [
    { type: 'header', text: { type: 'plain_text', text: clip(title, HEADER_MAX, false) } },
    { type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) },
  ];
  const section = (name, value) => ({ type: 'mrkdwn', text: `*${name}:* ${clip(value, SECTION_MAX - name.length - 4)}` });
  if (n.stage) blocks.push({ type: 'section', text: section('Stage', n.stage) });
  if (n.reason) blocks.push({ type: 'section', text: section('Reason', n.reason) });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `Greenlight delivery ${escape(n.deliveryId)}` }] });
  // The plain text is what notifications show, and all that services without blocks show
  // (Mattermost, Rocket.Chat): the stage and the reason too.
  let text = `${title}: ${order.id}, ${total}, requested by ${order.requester}`;
  if (n.stage) text += `; stage ${n.stage}`;
  if (n.reason) text += `; reason: ${n.reason}`;
  const body = { text: clip(text, SECTION_MAX, false), blocks };
  if (settings.channel) body.channel = settings.channel;
  if (settings.username) body.username = settings.username;
  return body;
}

/** Thrown to the host as `notify-error`: a `temporary` one is retried, a `permanent` one is not. */
export function temporary(text) {
  return { tag: 'temporary', val: text };
}
export function permanent(text) {
  return { tag: 'permanent', val: text };
}

/** What the chat service's answer means for the delivery. */
export function outcome(status, answer) {
  if (status >= 200 && status < 300) return null;
  const said = answer ? ` (${answer})` : '';
  if (status === 408 || status === 425 || status === 429 || status >= 500) {
    return temporary(`the chat webhook answered ${status}${said}`);
  }
  return permanent(`the chat webhook refused the message with ${status}${said}; check its url`);
}
