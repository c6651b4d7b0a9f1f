// What an error means to the person using the console. Acks carry a SPEC §2 code and the
// server's own message ("wrong login or password", "row is locked by Ana"); people see a
// sentence for the code first, the server's message as the detail, and never the bare code
// (it stays in data-code on the element, for tests and support).

const SENTENCES = {
  bad_request: 'That was not accepted.',
  unauthorized: 'You are not signed in, or the sign-in was refused.',
  token_expired: 'Your session expired. Sign in again.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'That no longer exists, or you cannot see it.',
  conflict: 'That clashes with something that exists or changed meanwhile.',
  locked: 'Someone else is editing this right now.',
  too_large: 'That is too large.',
  rate_limited: 'Too many requests: wait a moment, then try again.',
  unavailable: 'The server is briefly unavailable: try again shortly.',
  internal: 'Something went wrong on the server.',
  // Client side (client.js): the call never got its answer.
  timeout: 'The server did not answer in time.',
  disconnected: 'You are offline: that did not reach the server.',
};

// Reasons (details.reason) that deserve their own sentence.
const REASONS = {
  guest_limit: 'Guest accounts have a limit here: register to keep going.',
};

/** {summary, detail, code} for an AckError (or any Error): summary is the sentence for its
 *  code (null for codes a panel made up itself, whose message says it all), detail the
 *  server's message, or every field problem of a bad_request. */
export function describeError(err) {
  if (!err || !err.code) {
    return { summary: 'Something went wrong in this page.',
      detail: (err && err.message) || String(err || ''), code: 'error' };
  }
  const details = err.details || {};
  let detail = err.message || '';
  const fields = details.fields;
  if (Array.isArray(fields) && fields.length > 1) detail = fields.map((f) => f.problem).join('; ');
  const wait = typeof details.retryAfterMs === 'number' ? details.retryAfterMs / 1000
    : details.retryAfter;
  if (err.code === 'rate_limited' && typeof wait === 'number' && !/again in/.test(detail)) {
    detail = `${detail}${detail ? ' · ' : ''}try again in ${Math.max(1, Math.ceil(wait))} s`;
  }
  const summary = REASONS[details.reason] || SENTENCES[err.code] || null;
  return { summary, detail, code: err.code };
}

/** One line of text: "Sentence (the server's message)". The server's message is kept as it
 *  was written: it names the field, the row, the person. */
export function errorText(err) {
  const { summary, detail } = describeError(err);
  if (!summary) return detail;
  return detail ? `${summary} (${detail})` : summary;
}
