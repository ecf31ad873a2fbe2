// portico's translations in the browser: the shell (bootstrap.js) and its own views (home, my access,
// not found) load their texts through this one script. The texts live in /shell/i18n/<locale>.json,
// one file per language, nested by area (`launchpad.filter.label`); the server reads the same files for
// the pages it renders (src/i18n.rs), and a unit test there keeps every language's keys and `{name}`
// placeholders the same as English's.
//
// Which language: the shell page is rendered with `<html lang>` set to the language portico chose from
// the browser (Accept-Language, or the user's pick in the profile menu); the shell hands it to Luigi
// (`Luigi.i18n().setCurrentLocale`), and Luigi hands it to every view through Luigi Client
// (`LuigiClient.uxManager().getCurrentLocale()`), so views and micro-apps follow the shell.
//
// Usage:
//   porticoI18n.load(locale).then(function (i18n) {
//     i18n.t('launchpad.greeting', { name: 'Ada' });   // a text, `{name}` filled in
//     i18n.apply(document);                              // [data-i18n], [data-i18n-attr] elements
//   });
// An element with `data-i18n="key"` gets the text as its content; `data-i18n-attr="placeholder:key
// aria-label:key2"` sets attributes. A missing key shows English, then the key itself: never a blank.
(function () {
  'use strict';

  var SUPPORTED = ['en', 'de'];
  var FALLBACK = 'en';
  var loaded = {};

  /** The supported language closest to `locale` (`de-CH` → `de`), else English. */
  function supported(locale) {
    var primary = String(locale || '').toLowerCase().split(/[-_]/)[0];
    return SUPPORTED.indexOf(primary) >= 0 ? primary : FALLBACK;
  }

  function fetchTable(locale) {
    if (!loaded[locale]) {
      loaded[locale] = fetch('/shell/i18n/' + locale + '.json', { credentials: 'same-origin' })
        .then(function (response) {
          if (!response.ok) throw new Error('HTTP ' + response.status);
          return response.json();
        })
        .catch(function () { return {}; });
    }
    return loaded[locale];
  }

  function lookup(table, key) {
    var value = table;
    var parts = String(key).split('.');
    for (var i = 0; i < parts.length; i++) {
      if (!value || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, parts[i])) return undefined;
      value = value[parts[i]];
    }
    return typeof value === 'string' ? value : undefined;
  }

  function fill(text, vars) {
    if (!vars) return text;
    return text.replace(/\{([A-Za-z0-9_]+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole;
    });
  }

  function translator(locale, table, fallback) {
    function find(key) {
      var text = lookup(table, key);
      if (text === undefined) text = lookup(fallback, key);
      return text;
    }
    var i18n = {
      locale: locale,
      /** Whether `key` has a text (in this language or English). */
      has: function (key) { return find(key) !== undefined; },
      /** The text of `key` with `{name}` placeholders filled from `vars`; the key when there is none. */
      t: function (key, vars) {
        var text = find(key);
        return text === undefined ? key : fill(text, vars);
      },
      /** `<key>One` or `<key>Other`: the key of the text for `count` things. */
      plural: function (key, count) { return key + (count === 1 ? 'One' : 'Other'); },
      /**
       * `names` as one list the way this language writes it, as parts to render
       * (`[{ type: 'element' | 'literal', value }]`): "a, b and c", "a, b und c"; `type` 'disjunction'
       * for "or". Without `Intl.ListFormat`, commas.
       */
      listParts: function (names, type) {
        try {
          return new Intl.ListFormat(locale, { style: 'long', type: type || 'conjunction' }).formatToParts(names);
        } catch (e) {
          var parts = [];
          names.forEach(function (name, index) {
            if (index) parts.push({ type: 'literal', value: ', ' });
            parts.push({ type: 'element', value: name });
          });
          return parts;
        }
      },
      /** When `iso` (RFC 3339) was, as this language writes it: the time of day if today, else the date
       *  with it; the text as given if it is no time. */
      when: function (iso) {
        var at = new Date(iso);
        if (isNaN(at.getTime())) return String(iso || '');
        var today = at.toDateString() === new Date().toDateString();
        try {
          return today ? at.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' })
            : at.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
        } catch (e) {
          return at.toISOString();
        }
      },
      /** Translates `[data-i18n]` and `[data-i18n-attr]` elements under `root`, and sets `<html lang>`. */
      apply: function (root) {
        var scope = root || document;
        (scope.documentElement || document.documentElement).setAttribute('lang', locale);
        Array.prototype.forEach.call(scope.querySelectorAll('[data-i18n]'), function (el) {
          el.textContent = i18n.t(el.getAttribute('data-i18n'));
        });
        Array.prototype.forEach.call(scope.querySelectorAll('[data-i18n-attr]'), function (el) {
          el.getAttribute('data-i18n-attr').split(/\s+/).forEach(function (pair) {
            var at = pair.indexOf(':');
            if (at > 0) el.setAttribute(pair.slice(0, at), i18n.t(pair.slice(at + 1)));
          });
        });
        return i18n;
      }
    };
    return i18n;
  }

  window.porticoI18n = {
    supported: supported,
    /** Loads the texts of `locale` (and English, for keys it lacks); resolves to a translator. */
    load: function (locale) {
      var chosen = supported(locale);
      return Promise.all([fetchTable(chosen), chosen === FALLBACK ? {} : fetchTable(FALLBACK)])
        .then(function (tables) {
          var fallback = chosen === FALLBACK ? tables[0] : tables[1];
          return translator(chosen, tables[0], fallback);
        });
    }
  };
})();
