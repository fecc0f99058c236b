// Passkeys (docs/behaviour.md §13.2): "Sign in with a passkey" on /sign-in and "Add a
// passkey" on /account. Both appear only in a secure context with WebAuthn; elsewhere the
// page stays as the server sent it. The server's options carry binary fields as base64url
// strings; the browser wants ArrayBuffers, and its answers go back as base64url.
(function () {
  'use strict';
  if (!window.isSecureContext || !window.PublicKeyCredential || !navigator.credentials) return;

  function fromB64url(s) {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!resp.ok) throw new Error(data.error || ('The server answered ' + resp.status + '.'));
        return data;
      });
    });
  }

  function creationOptions(pk) {
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(pk) {
    pk.challenge = fromB64url(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }

  function extensions(cred) {
    try { return cred.getClientExtensionResults() || {}; } catch (e) { return {}; }
  }

  function registration(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64url(r.attestationObject),
        clientDataJSON: toB64url(r.clientDataJSON),
        transports: typeof r.getTransports === 'function' ? r.getTransports() : undefined
      },
      extensions: extensions(cred)
    };
  }

  function assertion(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null
      },
      extensions: extensions(cred)
    };
  }

  function showError(el, message) {
    el.textContent = message;
    el.hidden = false;
  }

  function failure(err) {
    // The browser's own refusals (the user cancelled, timed out) have a name, not our text.
    if (err && err.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
    if (err && err.name === 'InvalidStateError') return 'This device already holds a passkey for your account.';
    return (err && err.message) || 'The passkey did not work.';
  }

  function initSignIn() {
    const box = document.getElementById('passkey-sign-in');
    const form = document.querySelector('form[action="/sign-in"]');
    if (!box || !form) return;
    const button = document.getElementById('passkey-sign-in-button');
    const error = document.getElementById('passkey-sign-in-error');
    const field = function (name) {
      const input = form.querySelector('input[name="' + name + '"]');
      return input ? input.value : '';
    };
    box.hidden = false;
    button.addEventListener('click', function () {
      button.disabled = true;
      error.hidden = true;
      const token = field('csrf_token');
      post('/sign-in/passkey/options', { csrf_token: token }).then(function (started) {
        return navigator.credentials.get(requestOptions(started.publicKey)).then(function (cred) {
          return post('/sign-in/passkey', {
            csrf_token: token,
            ceremony: started.ceremony,
            credential: assertion(cred),
            next: field('next'),
            rd: field('rd'),
            sig: field('sig')
          });
        });
      }).then(function (done) {
        window.location.assign(done.redirect);
      }).catch(function (err) {
        button.disabled = false;
        showError(error, failure(err));
      });
    });
  }

  function initAccount() {
    const form = document.getElementById('passkey-add');
    if (!form) return;
    const unsupported = document.getElementById('passkey-unsupported');
    if (unsupported) unsupported.hidden = true;
    const error = document.getElementById('passkey-add-error');
    const button = document.getElementById('passkey-add-button');
    form.hidden = false;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      button.disabled = true;
      error.hidden = true;
      const token = form.getAttribute('data-csrf');
      const name = form.querySelector('input[name="name"]').value;
      post('/account/passkeys/options', { csrf_token: token, name: name }).then(function (started) {
        return navigator.credentials.create(creationOptions(started.publicKey)).then(function (cred) {
          return post('/account/passkeys', {
            csrf_token: token,
            ceremony: started.ceremony,
            credential: registration(cred)
          });
        });
      }).then(function () {
        window.location.assign('/account?passkey=added');
      }).catch(function (err) {
        button.disabled = false;
        showError(error, failure(err));
      });
    });
  }

  function init() {
    initSignIn();
    initAccount();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
