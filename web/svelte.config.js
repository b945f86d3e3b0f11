// Svelte compiler options. CSS is always emitted as files (never injected as <style> at run
// time), so the server's Content-Security-Policy can say `style-src 'self'`.
export default {
  compilerOptions: {
    css: 'external',
  },
};
