// The header's display choices (theme, how times read) and what they should make of the
// page's times.
import { Locator, Page, expect } from '@playwright/test';

export type Theme = 'system' | 'light' | 'dark' | 'contrast';
export type TimeStyle = 'absolute' | 'relative';
export type Zone = 'local' | 'utc';

/** Chooses in the header's Display menu, as a viewer does. */
export async function choose(
  page: Page,
  choices: { theme?: Theme; style?: TimeStyle; zone?: Zone },
): Promise<void> {
  const menu = page.getByTestId('display-menu');
  if (!(await menu.evaluate((details) => (details as HTMLDetailsElement).open))) {
    await menu.locator('summary').click();
  }
  if (choices.theme) await page.getByTestId('theme-choice').selectOption(choices.theme);
  if (choices.style) await page.getByTestId('time-style-choice').selectOption(choices.style);
  if (choices.zone) await page.getByTestId('time-zone-choice').selectOption(choices.zone);
  await menu.locator('summary').click();
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `at` written as the page writes an absolute time, `offsetMinutes` east of UTC. */
export function written(at: Date, offsetMinutes: number, clockOnly: boolean): string {
  const shifted = new Date(at.getTime() + offsetMinutes * 60_000);
  const clock = `${pad(shifted.getUTCHours())}:${pad(shifted.getUTCMinutes())}:${pad(shifted.getUTCSeconds())}`;
  const date = `${shifted.getUTCFullYear()}-${pad(shifted.getUTCMonth() + 1)}-${pad(shifted.getUTCDate())}`;
  return clockOnly ? clock : `${date} ${clock}`;
}

/**
 * Every `<time>` of the page reads as chosen: relative ("… ago", "in …", "just now"), or
 * the instant of its `datetime` in UTC ("… UTC") or `offsetMinutes` east of it. At least
 * `least` times are on the page.
 */
export async function expectTimesRead(
  page: Page,
  style: TimeStyle,
  zone: Zone,
  offsetMinutes: number,
  least: number,
): Promise<void> {
  const times: Locator = page.locator('main time[datetime], header time[datetime]');
  await expect.poll(() => times.count()).toBeGreaterThanOrEqual(least);
  await expect(async () => {
    const all = await times.evaluateAll((elements) =>
      elements.map((e) => ({ datetime: e.getAttribute('datetime')!, text: e.textContent!.trim(), title: e.getAttribute('title') ?? '' })),
    );
    for (const { datetime, text, title } of all) {
      const at = new Date(datetime);
      if (style === 'relative') {
        expect(text, `${datetime} reads relative`).toMatch(/ ago$|^in |^just now$/);
        expect(title, `hovering ${datetime} shows the date`).toContain(written(at, zone === 'utc' ? 0 : offsetMinutes, false));
      } else {
        const offset = zone === 'utc' ? 0 : offsetMinutes;
        const suffix = zone === 'utc' ? ' UTC' : '';
        const either = [written(at, offset, false) + suffix, written(at, offset, true) + suffix];
        expect(either, `${datetime} reads as ${zone}`).toContain(text);
        expect(title, `hovering ${datetime} shows how long ago`).toMatch(/ ago|^in |just now/);
      }
    }
  }).toPass({ timeout: 15_000 });
}
