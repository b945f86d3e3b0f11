// The lazily loaded math chunk: KaTeX with its stylesheet and fonts (bundled, never fetched
// from outside). Imported only through `loadMath()` in math.ts.
import katex from 'katex';
import 'katex/dist/katex.min.css';

export default katex;
