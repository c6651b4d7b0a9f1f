// Uploading a file to a project over REST (POST /api/projects/<id>/files), with progress:
// XMLHttpRequest, because fetch() cannot report an upload's progress. An expired access
// token is renewed once (app.refresh) and the upload sent again.
import { AckError } from './lib.js';

function uploadOnce(app, projectId, file, onProgress) {
  return new Promise((resolve, reject) => {
    const token = app.tokens && app.tokens.accessToken;
    if (!token) {
      reject(new AckError({ code: 'unauthorized', message: 'not signed in' }, 'upload'));
      return;
    }
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.open('POST', `/api/projects/${encodeURIComponent(projectId)}/files`);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    const started = performance.now();
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable || !onProgress) return;
      const secs = (performance.now() - started) / 1000;
      const speed = secs > 0 ? e.loaded / secs : 0; // bytes per second so far
      onProgress({ loaded: e.loaded, total: e.total, speed,
        eta: speed > 0 ? (e.total - e.loaded) / speed : null });
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && body.data) resolve(body.data);
      else {
        reject(new AckError(body.error || { code: 'internal',
          message: `${xhr.status} ${xhr.statusText}` }, 'upload'));
      }
    };
    xhr.onerror = () => reject(new AckError({ code: 'unavailable',
      message: 'the upload did not reach the server' }, 'upload'));
    xhr.send(form);
  });
}

/** The stored file's view ({id, name, size, mime, ...}); rejects with an AckError.
 *  onProgress({loaded, total, speed (bytes/s), eta (s or null)}) as the bytes go. */
export async function uploadFile(app, projectId, file, onProgress) {
  try {
    return await uploadOnce(app, projectId, file, onProgress);
  } catch (err) {
    if (err.code !== 'token_expired') throw err;
    await app.refresh();
    return uploadOnce(app, projectId, file, onProgress);
  }
}

/** Save a response body as a file named `name` (a Bearer-authorised download). */
export async function saveResponse(res, name) {
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
