/*
 * Gatehouse browser script.
 *
 * Turns each password the user types into SHA-512(canonical username ‖ NFKC password), base64,
 * before a form is sent, so the plain password never leaves the browser (docs/behaviour.md §2,
 * §3). It also checks the sign-up username and the sign-up / change-password length and repeat
 * rules before anything is sent.
 * Every form still works without this file: the server digests plain passwords itself.
 *
 * Plain ES2017, no modules and no build step; the page's CSP forbids inline script and style,
 * so this file only toggles attributes and classes.
 */
(function () {
  'use strict';

  const MIN_LENGTH = 8;
  const MAX_LENGTH = 1024;
  const MESSAGES = {
    short: 'Use at least 8 characters.',
    long: 'Use at most 1024 characters.',
    mismatch: 'The passwords do not match.',
    usernameEmpty: 'Enter a username.',
    usernameShort: 'Use at least 3 characters.',
    usernameLong: 'Use at most 32 characters.',
    usernameChars: 'Use only letters a–z, digits and underscores.',
    summary: 'Please correct the marked fields:',
    failed: 'Your browser could not prepare the password securely; please reload the page.',
  };

  // ---- SHA-512 fallback (FIPS 180-4) -------------------------------------------------------
  // crypto.subtle exists only in secure contexts; the site may be served over plain HTTP on a
  // LAN, so we carry our own implementation. 64-bit words are kept as (hi, lo) 32-bit halves.

  const K = new Uint32Array([
    0x428a2f98, 0xd728ae22, 0x71374491, 0x23ef65cd,
    0xb5c0fbcf, 0xec4d3b2f, 0xe9b5dba5, 0x8189dbbc,
    0x3956c25b, 0xf348b538, 0x59f111f1, 0xb605d019,
    0x923f82a4, 0xaf194f9b, 0xab1c5ed5, 0xda6d8118,
    0xd807aa98, 0xa3030242, 0x12835b01, 0x45706fbe,
    0x243185be, 0x4ee4b28c, 0x550c7dc3, 0xd5ffb4e2,
    0x72be5d74, 0xf27b896f, 0x80deb1fe, 0x3b1696b1,
    0x9bdc06a7, 0x25c71235, 0xc19bf174, 0xcf692694,
    0xe49b69c1, 0x9ef14ad2, 0xefbe4786, 0x384f25e3,
    0x0fc19dc6, 0x8b8cd5b5, 0x240ca1cc, 0x77ac9c65,
    0x2de92c6f, 0x592b0275, 0x4a7484aa, 0x6ea6e483,
    0x5cb0a9dc, 0xbd41fbd4, 0x76f988da, 0x831153b5,
    0x983e5152, 0xee66dfab, 0xa831c66d, 0x2db43210,
    0xb00327c8, 0x98fb213f, 0xbf597fc7, 0xbeef0ee4,
    0xc6e00bf3, 0x3da88fc2, 0xd5a79147, 0x930aa725,
    0x06ca6351, 0xe003826f, 0x14292967, 0x0a0e6e70,
    0x27b70a85, 0x46d22ffc, 0x2e1b2138, 0x5c26c926,
    0x4d2c6dfc, 0x5ac42aed, 0x53380d13, 0x9d95b3df,
    0x650a7354, 0x8baf63de, 0x766a0abb, 0x3c77b2a8,
    0x81c2c92e, 0x47edaee6, 0x92722c85, 0x1482353b,
    0xa2bfe8a1, 0x4cf10364, 0xa81a664b, 0xbc423001,
    0xc24b8b70, 0xd0f89791, 0xc76c51a3, 0x0654be30,
    0xd192e819, 0xd6ef5218, 0xd6990624, 0x5565a910,
    0xf40e3585, 0x5771202a, 0x106aa070, 0x32bbd1b8,
    0x19a4c116, 0xb8d2d0c8, 0x1e376c08, 0x5141ab53,
    0x2748774c, 0xdf8eeb99, 0x34b0bcb5, 0xe19b48a8,
    0x391c0cb3, 0xc5c95a63, 0x4ed8aa4a, 0xe3418acb,
    0x5b9cca4f, 0x7763e373, 0x682e6ff3, 0xd6b2b8a3,
    0x748f82ee, 0x5defb2fc, 0x78a5636f, 0x43172f60,
    0x84c87814, 0xa1f0ab72, 0x8cc70208, 0x1a6439ec,
    0x90befffa, 0x23631e28, 0xa4506ceb, 0xde82bde9,
    0xbef9a3f7, 0xb2c67915, 0xc67178f2, 0xe372532b,
    0xca273ece, 0xea26619c, 0xd186b8c7, 0x21c0c207,
    0xeada7dd6, 0xcde0eb1e, 0xf57d4f7f, 0xee6ed178,
    0x06f067aa, 0x72176fba, 0x0a637dc5, 0xa2c898a6,
    0x113f9804, 0xbef90dae, 0x1b710b35, 0x131c471b,
    0x28db77f5, 0x23047d84, 0x32caab7b, 0x40c72493,
    0x3c9ebe0a, 0x15c9bebc, 0x431d67c4, 0x9c100d4c,
    0x4cc5d4be, 0xcb3e42b6, 0x597f299c, 0xfc657e2a,
    0x5fcb6fab, 0x3ad6faec, 0x6c44198c, 0x4a475817,
  ]);

  const H0 = [
    0x6a09e667, 0xf3bcc908, 0xbb67ae85, 0x84caa73b,
    0x3c6ef372, 0xfe94f82b, 0xa54ff53a, 0x5f1d36f1,
    0x510e527f, 0xade682d1, 0x9b05688c, 0x2b3e6c1f,
    0x1f83d9ab, 0xfb41bd6b, 0x5be0cd19, 0x137e2179,
  ];

  // Halves of ROTR^n and SHR^n. n is never 0 or 32 here (JS shifts count modulo 32).
  function rotrHi(h, l, n) { return n < 32 ? (h >>> n) | (l << (32 - n)) : (l >>> (n - 32)) | (h << (64 - n)); }
  function rotrLo(h, l, n) { return n < 32 ? (l >>> n) | (h << (32 - n)) : (h >>> (n - 32)) | (l << (64 - n)); }
  function shrLo(h, l, n) { return (l >>> n) | (h << (32 - n)); }

  function sha512(message) {
    const len = message.length;
    // 0x80, zero fill, then the 128-bit big-endian bit length; whole 128-byte blocks.
    const total = Math.ceil((len + 17) / 128) * 128;
    const padded = new Uint8Array(total);
    padded.set(message);
    padded[len] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(total - 8, Math.floor(len / 0x20000000));
    view.setUint32(total - 4, (len % 0x20000000) * 8);

    const H = new Uint32Array(H0);
    const Wh = new Uint32Array(80);
    const Wl = new Uint32Array(80);

    for (let block = 0; block < total; block += 128) {
      let t;
      for (t = 0; t < 16; t++) {
        Wh[t] = view.getUint32(block + t * 8);
        Wl[t] = view.getUint32(block + t * 8 + 4);
      }
      for (t = 16; t < 80; t++) {
        const h2 = Wh[t - 2], l2 = Wl[t - 2], h15 = Wh[t - 15], l15 = Wl[t - 15];
        const s1h = rotrHi(h2, l2, 19) ^ rotrHi(h2, l2, 61) ^ (h2 >>> 6);
        const s1l = rotrLo(h2, l2, 19) ^ rotrLo(h2, l2, 61) ^ shrLo(h2, l2, 6);
        const s0h = rotrHi(h15, l15, 1) ^ rotrHi(h15, l15, 8) ^ (h15 >>> 7);
        const s0l = rotrLo(h15, l15, 1) ^ rotrLo(h15, l15, 8) ^ shrLo(h15, l15, 7);
        // Sum the low halves as plain numbers (exact below 2^53) and carry into the high half;
        // storing into a Uint32Array reduces modulo 2^32.
        const lo = (s1l >>> 0) + Wl[t - 7] + (s0l >>> 0) + Wl[t - 16];
        Wl[t] = lo;
        Wh[t] = s1h + Wh[t - 7] + s0h + Wh[t - 16] + Math.floor(lo / 0x100000000);
      }

      let ah = H[0], al = H[1], bh = H[2], bl = H[3], ch = H[4], cl = H[5], dh = H[6], dl = H[7];
      let eh = H[8], el = H[9], fh = H[10], fl = H[11], gh = H[12], gl = H[13], hh = H[14], hl = H[15];
      for (t = 0; t < 80; t++) {
        const S1h = rotrHi(eh, el, 14) ^ rotrHi(eh, el, 18) ^ rotrHi(eh, el, 41);
        const S1l = rotrLo(eh, el, 14) ^ rotrLo(eh, el, 18) ^ rotrLo(eh, el, 41);
        const chH = (eh & fh) ^ (~eh & gh);
        const chL = (el & fl) ^ (~el & gl);
        let t1l = hl + (S1l >>> 0) + (chL >>> 0) + K[2 * t + 1] + Wl[t];
        const t1h = hh + S1h + chH + K[2 * t] + Wh[t] + Math.floor(t1l / 0x100000000);
        t1l >>>= 0;

        const S0h = rotrHi(ah, al, 28) ^ rotrHi(ah, al, 34) ^ rotrHi(ah, al, 39);
        const S0l = rotrLo(ah, al, 28) ^ rotrLo(ah, al, 34) ^ rotrLo(ah, al, 39);
        const majH = (ah & bh) ^ (ah & ch) ^ (bh & ch);
        const majL = (al & bl) ^ (al & cl) ^ (bl & cl);
        let t2l = (S0l >>> 0) + (majL >>> 0);
        const t2h = S0h + majH + Math.floor(t2l / 0x100000000);
        t2l >>>= 0;

        hh = gh; hl = gl; gh = fh; gl = fl; fh = eh; fl = el;
        el = dl + t1l;
        eh = (dh + t1h + Math.floor(el / 0x100000000)) >>> 0;
        el >>>= 0;
        dh = ch; dl = cl; ch = bh; cl = bl; bh = ah; bl = al;
        al = t1l + t2l;
        ah = (t1h + t2h + Math.floor(al / 0x100000000)) >>> 0;
        al >>>= 0;
      }

      const words = [ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl];
      for (let i = 0; i < 16; i += 2) {
        const sumLo = H[i + 1] + words[i + 1];
        H[i + 1] = sumLo;
        H[i] = H[i] + words[i] + Math.floor(sumLo / 0x100000000);
      }
    }

    const out = new Uint8Array(64);
    const outView = new DataView(out.buffer);
    for (let j = 0; j < 16; j++) outView.setUint32(j * 4, H[j]);
    return out;
  }

  // ---- The digest (docs/behaviour.md §2) ---------------------------------------------------

  const usesWebCrypto = Boolean(window.isSecureContext && window.crypto && window.crypto.subtle);

  // Only ASCII letters: toLowerCase() would also fold non-ASCII letters, which the server's
  // canonical form leaves alone.
  function canonicalUsername(username) {
    return String(username).trim().replace(/[A-Z]/g, function (c) {
      return String.fromCharCode(c.charCodeAt(0) + 32);
    });
  }

  function normalizePassword(password) {
    return String(password).normalize('NFKC');
  }

  // Unicode scalar values, as the server counts them (Rust chars().count()).
  function passwordLength(password) {
    return Array.from(normalizePassword(password)).length;
  }

  function toBase64(bytes) {
    let binary = '';
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary);
  }

  function digestWith(kind, username, password) {
    return Promise.resolve().then(function () {
      const bytes = new TextEncoder().encode(canonicalUsername(username) + normalizePassword(password));
      if (kind === 'fallback') return sha512(bytes);
      if (kind !== 'webcrypto') throw new Error('unknown digest kind: ' + kind);
      if (!usesWebCrypto) throw new Error('Web Crypto is not available in this context');
      return window.crypto.subtle.digest('SHA-512', bytes).then(function (buf) {
        return new Uint8Array(buf);
      });
    }).then(toBase64);
  }

  function digest(username, password) {
    if (!usesWebCrypto) return digestWith('fallback', username, password);
    // Web Crypto may still refuse (odd embedders, policies); the fallback gives the same bytes.
    return digestWith('webcrypto', username, password).catch(function () {
      return digestWith('fallback', username, password);
    });
  }

  window.Gatehouse = {
    digest: digest,
    digestWith: digestWith,
    sha512: sha512,
    canonicalUsername: canonicalUsername,
    normalizePassword: normalizePassword,
    passwordLength: passwordLength,
    usesWebCrypto: usesWebCrypto,
    usernameProblem: usernameProblem,
  };

  // ---- Forms (docs/behaviour.md §3) --------------------------------------------------------

  const busy = new WeakSet();

  function controls(form) {
    return Array.prototype.slice.call(form.elements);
  }

  function hiddenField(form, name) {
    return controls(form).find(function (el) {
      return el.type === 'hidden' && el.name === name;
    }) || null;
  }

  function usernameOf(form) {
    const input = controls(form).find(function (el) {
      return el.name === 'username' && el.tagName === 'INPUT';
    });
    if (input) return input.value;
    return form.hasAttribute('data-username') ? form.getAttribute('data-username') : null;
  }

  // The label's own text, without nested hints or markers, to name the field in the summary.
  function labelText(input) {
    const label = input.labels && input.labels[0];
    if (!label) return '';
    return Array.prototype.filter.call(label.childNodes, function (node) {
      return node.nodeType === Node.TEXT_NODE;
    }).map(function (node) { return node.textContent; }).join(' ').replace(/\s+/g, ' ').trim();
  }

  // Client messages are marked so that a new submit removes them but leaves the server's.
  function clearClientErrors(form) {
    controls(form).forEach(function (input) {
      if (!input.hasAttribute('data-client-invalid')) return;
      input.removeAttribute('data-client-invalid');
      input.removeAttribute('aria-invalid');
      const span = input.id ? document.getElementById(input.id + '-error') : null;
      if (span) span.textContent = '';
    });
    const summary = form.querySelector('.form-errors');
    if (summary && summary.hasAttribute('data-client-summary')) {
      summary.removeAttribute('data-client-summary');
      summary.textContent = '';
      summary.hidden = true;
    }
  }

  function showSummary(form, heading, items) {
    const summary = form.querySelector('.form-errors');
    if (!summary) return false;
    summary.textContent = '';
    const p = document.createElement('p');
    p.textContent = heading;
    summary.appendChild(p);
    if (items.length) {
      const ul = document.createElement('ul');
      items.forEach(function (text) {
        const li = document.createElement('li');
        li.textContent = text;
        ul.appendChild(li);
      });
      summary.appendChild(ul);
    }
    summary.setAttribute('data-client-summary', '');
    summary.hidden = false;
    return true;
  }

  // The server's rule and messages for a new username (docs/behaviour.md §2), checked in the same order:
  // length in UTF-8 bytes of the canonical form, then the characters.
  function usernameProblem(typed) {
    const canon = canonicalUsername(typed);
    const bytes = new TextEncoder().encode(canon).length;
    if (bytes === 0) return MESSAGES.usernameEmpty;
    if (bytes < 3) return MESSAGES.usernameShort;
    if (bytes > 32) return MESSAGES.usernameLong;
    if (!/^[a-z0-9_]+$/.test(canon)) return MESSAGES.usernameChars;
    return null;
  }

  // One message per field: a repeat reports the mismatch; its length follows from the original.
  function fieldProblem(input) {
    if (input.hasAttribute('data-check-username')) return usernameProblem(input.value);
    const repeatOf = input.getAttribute('data-repeat-of');
    if (repeatOf !== null) {
      const original = document.getElementById(repeatOf);
      if (original && normalizePassword(original.value) !== normalizePassword(input.value)) {
        return MESSAGES.mismatch;
      }
      if (original && original.hasAttribute('data-check-length')) return null;
    }
    if (input.hasAttribute('data-check-length')) {
      const n = passwordLength(input.value);
      if (n < MIN_LENGTH) return MESSAGES.short;
      if (n > MAX_LENGTH) return MESSAGES.long;
    }
    return null;
  }

  function validate(form) {
    const bad = [];
    const items = [];
    controls(form).forEach(function (input) {
      const message = fieldProblem(input);
      if (!message) return;
      bad.push(input);
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('data-client-invalid', '');
      const span = input.id ? document.getElementById(input.id + '-error') : null;
      if (span) span.textContent = message;
      const label = labelText(input);
      items.push(label ? label + ': ' + message : message);
    });
    if (bad.length) {
      showSummary(form, MESSAGES.summary, items);
      bad[0].focus();
    }
    return bad.length === 0;
  }

  function passwordInputs(form) {
    return controls(form).filter(function (el) {
      return el.tagName === 'INPUT' && el.type === 'password';
    });
  }

  function submitButtons(form) {
    return controls(form).filter(function (el) { return el.type === 'submit'; });
  }

  function lock(form) {
    passwordInputs(form).forEach(function (input) {
      if (!input.hasAttribute('name')) return;
      input.setAttribute('data-name', input.getAttribute('name'));
      input.removeAttribute('name');
    });
    submitButtons(form).forEach(function (button) { button.disabled = true; });
  }

  // Undo lock() so the form can be used again (after an error, or when restored by Back).
  function unlock(form) {
    passwordInputs(form).forEach(function (input) {
      if (!input.hasAttribute('data-name')) return;
      input.setAttribute('name', input.getAttribute('data-name'));
      input.removeAttribute('data-name');
    });
    submitButtons(form).forEach(function (button) { button.disabled = false; });
    busy.delete(form);
  }

  function onSubmit(event) {
    const form = event.currentTarget;
    if (busy.has(form)) {
      event.preventDefault();
      return;
    }
    clearClientErrors(form);
    if (!validate(form)) {
      event.preventDefault();
      return;
    }

    const username = usernameOf(form);
    const jobs = controls(form).filter(function (el) {
      return el.hasAttribute('data-digest-target');
    }).map(function (input) {
      return { input: input, target: hiddenField(form, input.getAttribute('data-digest-target')) };
    });
    // A page that lacks a username or a digest field cannot be digested correctly; sending it
    // as plain is still correct, because the server then digests the password itself.
    if (username === null || jobs.some(function (job) { return !job.target; })) return;

    event.preventDefault();
    busy.add(form);
    lock(form);
    Promise.all(jobs.map(function (job) {
      return digest(username, job.input.value);
    })).then(function (digests) {
      jobs.forEach(function (job, i) { job.target.value = digests[i]; });
      // The prototype's submit(): form.submit may be shadowed by a control named "submit".
      HTMLFormElement.prototype.submit.call(form);
    }).catch(function () {
      jobs.forEach(function (job) { job.target.value = ''; });
      unlock(form);
      if (!showSummary(form, MESSAGES.failed, [])) window.alert(MESSAGES.failed);
    });
  }

  // A page restored from the back/forward cache still has the names removed, the buttons
  // disabled and the digests filled in; make it usable again and drop the digests.
  function onPageShow(event) {
    if (!event.persisted) return;
    Array.prototype.forEach.call(document.querySelectorAll('form[data-digest-form]'), function (form) {
      controls(form).forEach(function (input) {
        if (input.hasAttribute('data-digest-target')) {
          const target = hiddenField(form, input.getAttribute('data-digest-target'));
          if (target) target.value = '';
        }
      });
      unlock(form);
    });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll('form[data-digest-form]'), function (form) {
      form.addEventListener('submit', onSubmit);
    });
    window.addEventListener('pageshow', onPageShow);
  }

  document.documentElement.classList.add('js');
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
