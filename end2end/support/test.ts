// The tests' `test`: Playwright's, with a page that fails the test when the app panics.
// A panic in the WASM app stops the page's app until a reload, yet the page may still
// look right (the server rendered it), so assertions on the page alone can miss it.
import { expect, test as base } from '@playwright/test';

/** The panics the app logged to the browser's console, as `console_error_panic_hook` writes them. */
const PANIC = /panicked at/;

export const test = base.extend({
  page: async ({ page }, use) => {
    const panics: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' && PANIC.test(message.text())) {
        panics.push(message.text().split('\n').slice(0, 3).join('\n'));
      }
    });
    await use(page);
    expect(panics, 'the app panicked in the browser').toEqual([]);
  },
});

export { expect };
