// notify-chat: each event of the tenant's orders as one message to a chat channel, through the
// channel's incoming webhook in Slack's message format (which Mattermost and Rocket.Chat accept
// too): a plain `text` for notifications and clients without blocks, and blocks for the channel.
//
// Built by `jco componentize` into a component exporting `greenlight:plugin/notifier-api` (the
// world `chat` in wit/: the notifier world less `mail`); the host calls `deliver` once per
// delivery, in a fresh instance, under the same limits as any plugin.

import { log, config } from 'greenlight:plugin/host@1.1.0';
import { send } from 'greenlight:plugin/http@1.1.0';
import { gist, message, outcome, permanent, sendFailure, subscribed, utf8 } from './message.js';

/** One delivery; what it throws is a `notify-error`. */
function deliver(n) {
  const settings = JSON.parse(config());
  if (!subscribed(settings, n.event)) return;
  if (typeof settings.url !== 'string' || !/^https?:\/\//.test(settings.url)) {
    throw permanent('notify-chat is not configured: set `url` to the channel\'s incoming webhook');
  }
  const body = utf8(JSON.stringify(message(n, settings)));
  let response;
  try {
    response = send({
      method: 'POST',
      url: settings.url,
      headers: [
        ['content-type', 'application/json'],
        ['x-greenlight-delivery', n.deliveryId],
      ],
      body,
    });
  } catch (e) {
    throw sendFailure(e);
  }
  const failed = outcome(response.status, gist(response.body));
  if (failed) throw failed;
  log('debug', `${n.event} of ${n.order.id} posted to the chat channel`);
}

export const notifierApi = {
  deliver(n) {
    try {
      deliver(n);
    } catch (e) {
      if (e && (e.tag === 'temporary' || e.tag === 'permanent')) throw e;
      // A defect of this plugin, not of the chat service: retrying would fail the same way.
      log('error', `notify-chat failed: ${e && e.stack ? e.stack : e}`);
      throw permanent(`notify-chat failed: ${e}`);
    }
  },
};
