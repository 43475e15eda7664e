// The message and the reading of answers, under Node.js: `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clip, gist, message, money, outcome, sendFailure, subscribed, utf8 } from '../src/message.js';

const notification = {
  deliveryId: 'd-1',
  event: 'order_rejected',
  order: { id: 'o-1', requester: 'alice', status: 'rejected', totalMinor: 123456, currency: 'EUR', costCenter: 'CC-1', department: null },
  recipients: [],
  stage: 'cost-center',
  reason: 'over <budget> & late',
  dataJson: '{}',
};

test('amounts are written as the host writes them', () => {
  assert.equal(money(123456, 'EUR'), '1,234.56 EUR');
  assert.equal(money(5, 'EUR'), '0.05 EUR');
  assert.equal(money(-7, 'JPY'), '-7 JPY');
  assert.equal(money(1000000, 'JPY'), '1,000,000 JPY');
  assert.equal(money(1234, 'KWD'), '1.234 KWD');
  assert.equal(money(999999999999999, 'EUR'), '9,999,999,999,999.99 EUR');
});

test('the message has a plain text, a header, the order fields, stage, reason and delivery', () => {
  const body = message(notification, { dashboard_url: 'https://gl.example.com/' });
  assert.equal(body.text, 'Order rejected: o-1, 1,234.56 EUR, requested by alice; stage cost-center; reason: over <budget> & late');
  assert.deepEqual(body.blocks[0], { type: 'header', text: { type: 'plain_text', text: 'Order rejected' } });
  assert.deepEqual(
    body.blocks[1].fields.map((f) => f.text),
    ['*Order*\n<https://gl.example.com/orders/o-1|o-1>', '*Total*\n1,234.56 EUR', '*Requester*\nalice', '*Status*\nrejected', '*Cost center*\nCC-1'],
  );
  assert.equal(body.blocks[2].text.text, '*Stage:* cost-center');
  // Slack's reserved characters are escaped; the plain text is not mrkdwn.
  assert.equal(body.blocks[3].text.text, '*Reason:* over &lt;budget&gt; &amp; late');
  assert.equal(body.blocks[4].elements[0].text, 'Greenlight delivery d-1');
  assert.equal(body.channel, undefined, 'no channel unless configured');
  assert.equal(message(notification, { channel: '#buying' }).channel, '#buying');
  assert.equal(message({ ...notification, event: 'something_new' }, {}).blocks[0].text.text, 'something_new');
});

test('a long reason is cut to what Slack accepts, never inside an escape', () => {
  const body = message({ ...notification, reason: '<'.repeat(4000) }, {});
  const reason = body.blocks[3].text.text;
  assert.ok(reason.length <= 3000, String(reason.length));
  assert.match(reason, /^\*Reason:\* (&lt;)+…$/);
  assert.ok(body.text.length <= 3000);
  assert.equal(clip('a<b', 10), 'a&lt;b');
  assert.equal(clip('abcdef', 4), 'abc…');
  assert.equal(clip('ab<', 6), 'ab…', 'the escape does not fit whole: cut before it');
});

test('an empty or absent events list means every event', () => {
  assert.ok(subscribed({}, 'order_approved'));
  assert.ok(subscribed({ events: [] }, 'order_approved'));
  assert.ok(subscribed({ events: ['order_approved'] }, 'order_approved'));
  assert.ok(!subscribed({ events: ['order_rejected'] }, 'order_approved'));
});

test("the host's http-error, thrown as an error's payload, is told apart", () => {
  const thrown = (tag, val) => Object.assign(new Error('[object Object] (see error.payload)'), { payload: { tag, val } });
  assert.deepEqual(sendFailure(thrown('failed', 'connection refused')), {
    tag: 'temporary',
    val: 'the chat webhook could not be reached (failed: connection refused)',
  });
  assert.equal(sendFailure(thrown('timeout')).val, 'the chat webhook could not be reached (timeout)');
  const denied = sendFailure(thrown('denied', 'http://10.0.0.1:80 is not granted'));
  assert.equal(denied.tag, 'permanent');
  assert.match(denied.val, /refused the chat webhook's origin \(denied: http:\/\/10.0.0.1:80 is not granted\); grant it/);
});

test('UTF-8 bytes are what Node.js encodes', () => {
  for (const text of ['plain', 'Müller — 5 €', '日本', 'emoji 🧾 too']) {
    assert.deepEqual(Array.from(utf8(text)), Array.from(Buffer.from(text, 'utf8')));
  }
  assert.equal(gist(utf8('ok ✓')), 'ok ???');
});

test('answers: 2xx delivered, 408, 425, 429 and 5xx retried, any other refusal is final', () => {
  assert.equal(outcome(200, 'ok'), null);
  for (const status of [408, 425, 429, 500, 503]) assert.equal(outcome(status, '').tag, 'temporary', String(status));
  for (const status of [400, 403, 404, 410]) assert.equal(outcome(status, 'no_service').tag, 'permanent', String(status));
  assert.match(outcome(404, 'no_service').val, /refused the message with 404 \(no_service\); check its url/);
});
