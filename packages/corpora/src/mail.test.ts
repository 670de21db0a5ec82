import { describe, expect, it } from 'vitest';
import { decodeQuotedPrintable, htmlToText, mailBody } from './mail';

describe('mailBody', () => {
  it('drops everything before the first blank line, folded header lines included', () => {
    const raw =
      'From: a@b.c\nSubject: a long\n  folded subject\nX-Empty:\n\nFirst line.\n\nSecond paragraph.\n';
    expect(mailBody(raw)).toBe('First line.\n\nSecond paragraph.');
  });

  it('handles CRLF line ends and a message without body', () => {
    expect(mailBody('Subject: x\r\n\r\nbody\r\ntext')).toBe('body\ntext');
    expect(mailBody('Subject: only headers')).toBe('');
  });

  it('decodes a quoted-printable body in its charset', () => {
    const raw =
      'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 is=\n open =3D yes';
    expect(mailBody(raw)).toBe('café is open = yes');
  });

  it('decodes a base64 text body', () => {
    // "Buy now!\n" in base64 is QnV5IG5vdyEK (RFC 4648 alphabet).
    const raw = 'Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nQnV5IG5v\ndyEK\n';
    expect(mailBody(raw)).toBe('Buy now!');
  });

  it('reduces an HTML body to its text', () => {
    const raw =
      'Content-Type: text/html\n\n<html><head><title>t</title><style>p {color: red}</style></head>' +
      '<body><p>Cheap&nbsp;<b>pills</b> &amp; more</p><!-- hidden --><script>alert(1)</script><p>Click &#72;ere</p></body></html>';
    expect(mailBody(raw)).toBe('Cheap pills & more\nClick Here');
  });

  it('keeps one alternative of a multipart/alternative, preferring text/plain, and skips attachments', () => {
    const raw = [
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      'preamble is ignored',
      '--outer',
      'Content-Type: multipart/alternative; boundary=inner',
      '',
      '--inner',
      'Content-Type: text/html',
      '',
      '<p>html version</p>',
      '--inner',
      'Content-Type: text/plain',
      '',
      'plain version',
      '--inner--',
      '--outer',
      'Content-Type: image/gif',
      'Content-Transfer-Encoding: base64',
      '',
      'R0lGODlhAQABAAAAACw=',
      '--outer',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'sign=E9',
      '--outer--',
      'epilogue is ignored',
    ].join('\n');
    expect(mailBody(raw)).toBe('plain version\n\nsigné');
  });

  it('falls back to the HTML alternative when there is no plain one', () => {
    const raw =
      'Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\n<i>only html</i>\n--b--\n';
    expect(mailBody(raw)).toBe('only html');
  });
});

describe('decodeQuotedPrintable and htmlToText', () => {
  it('decode soft breaks, escapes and entities', () => {
    expect(decodeQuotedPrintable('caf=C3=A9 au=\nlait', 'utf-8')).toBe('café aulait');
    expect(decodeQuotedPrintable('=E9t=E9', 'iso-8859-1')).toBe('été');
    expect(htmlToText('a<br>b &lt;c&gt; &#x41; &unknown;')).toBe('a\nb <c> A &unknown;');
  });
});
