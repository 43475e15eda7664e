// A notifier that reaches for the order's connector records, which the notifier world does not
// give: the host refuses it at install, naming `greenlight:plugin/records`.
import { customer } from 'greenlight:plugin/records@1.1.0';
import { log } from 'greenlight:plugin/host@1.1.0';

export const notifierApi = {
  deliver(n) {
    log('info', `${n.event}: ${JSON.stringify(customer())}`);
  },
};
