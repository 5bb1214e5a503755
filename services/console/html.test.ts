import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeHtml, html, jsonScript, raw } from './html.js';

describe('html', () => {
  it('given any string value, when interpolated, then no markup character of it survives (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme-ascii' }), fc.string(), (a, b) => {
        // given values in text and in an attribute
        const out = html`<td title="${a}">${b}</td>`.toString();
        // then what is between the console's own markup has no <, >, " or ' left
        const inner = out.slice('<td title="'.length, -'</td>'.length);
        const [attr, text] = [inner.slice(0, inner.indexOf('">')), inner.slice(inner.indexOf('">') + 2)];
        for (const part of [attr, text]) expect(part).not.toMatch(/[<>"']/);
        // and it reads back as the value
        const unescape = (s: string) =>
          s.replace(
            /&lt;|&gt;|&quot;|&#39;|&amp;/g,
            (e) => ({ '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&amp;': '&' })[e] ?? e,
          );
        expect(unescape(attr)).toBe(a);
        expect(unescape(text)).toBe(b);
      }),
      { numRuns: 500 },
    );
  });

  it('given values in arrays and nested templates, then each value is escaped once and the console’s markup kept', () => {
    const rows = ['<b>', 'a&b'].map((v) => html`<li>${v}</li>`);
    // (the formatter may indent a template: whitespace between tags is not what is tested)
    const list = html`<ul>
      ${rows}
    </ul>`.toString();
    expect(list.replace(/>\s+</g, '><')).toBe('<ul><li>&lt;b&gt;</li><li>a&amp;b</li></ul>');
    expect(html`<p>${null}${undefined}${false}${0}${raw('<br />')}</p>`.toString()).toBe('<p>0<br /></p>');
  });

  it('given a classic injection, then it is text', () => {
    const v = `"><script>alert(1)</script><img src=x onerror=alert(1)>`;
    const out = html`<input value="${v}" />`.toString();
    expect(out).not.toContain('<script');
    expect(out).not.toContain('<img');
    expect(escapeHtml("'")).toBe('&#39;');
  });
});

describe('jsonScript', () => {
  it('given any data, then the block cannot be closed from inside and parses back to the data (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (data, id) => {
        const out = jsonScript(id, data).toString();
        const body = out.slice(out.indexOf('>') + 1, -'</script>'.length);
        expect(body).not.toContain('<');
        expect(out.indexOf('</script>')).toBe(out.length - '</script>'.length);
        expect(JSON.parse(body)).toEqual(JSON.parse(JSON.stringify(data)));
      }),
      { numRuns: 300 },
    );
  });
});
