// highlight.js core with a hand-picked set of languages (the full bundle is ~10x larger).

import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

const languages = { bash, c, cpp, css, diff, go, java, javascript, json, python, rust, shell, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang);
hljs.registerAliases(['sh', 'zsh'], { languageName: 'bash' });
hljs.registerAliases(['console', 'shellsession'], { languageName: 'shell' });
hljs.registerAliases(['jsonc', 'json5'], { languageName: 'json' });
hljs.registerAliases(['html', 'svg', 'xhtml'], { languageName: 'xml' });

/** The registered name of a fence's language, if it is one we highlight. */
export function knownLanguage(lang: string): string | undefined {
  const name = lang.trim().toLowerCase();
  if (!name) return undefined;
  return hljs.getLanguage(name) ? name : undefined;
}

/** Highlighted HTML of `code` (escaped; only `<span class="hljs-...">` added). */
export function highlight(code: string, lang: string): string {
  return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
}
