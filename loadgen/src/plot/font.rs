//! A 5x7 bitmap font for the plot's labels: `plotters` without its font features (which pull
//! in system font libraries or a font file) cannot draw text, so the few labels a plot needs
//! are drawn pixel by pixel. Upper case, digits and a little punctuation; lower case is
//! drawn as upper case, anything else as `?`.

/// Glyph width and height in font pixels (plus one column of spacing per character).
pub(crate) const W: i32 = 5;
/// Glyph height.
pub(crate) const H: i32 = 7;

#[rustfmt::skip]
const GLYPHS: &[(char, [&str; 7])] = &[
    ('0', [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "]),
    ('1', ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "]),
    ('2', [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"]),
    ('3', ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "]),
    ('4', ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "]),
    ('5', ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "]),
    ('6', ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "]),
    ('7', ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "]),
    ('8', [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "]),
    ('9', [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "]),
    ('A', [" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"]),
    ('B', ["#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "]),
    ('C', [" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "]),
    ('D', ["###  ", "#  # ", "#   #", "#   #", "#   #", "#  # ", "###  "]),
    ('E', ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"]),
    ('F', ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "]),
    ('G', [" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"]),
    ('H', ["#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"]),
    ('I', [" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "]),
    ('J', ["  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "]),
    ('K', ["#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"]),
    ('L', ["#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"]),
    ('M', ["#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"]),
    ('N', ["#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"]),
    ('O', [" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "]),
    ('P', ["#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "]),
    ('Q', [" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"]),
    ('R', ["#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"]),
    ('S', [" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "]),
    ('T', ["#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "]),
    ('U', ["#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "]),
    ('V', ["#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "]),
    ('W', ["#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "]),
    ('X', ["#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"]),
    ('Y', ["#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "]),
    ('Z', ["#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"]),
    (' ', ["     ", "     ", "     ", "     ", "     ", "     ", "     "]),
    ('.', ["     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "]),
    (',', ["     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "]),
    ('-', ["     ", "     ", "     ", "#####", "     ", "     ", "     "]),
    ('+', ["     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "]),
    ('=', ["     ", "     ", "#####", "     ", "#####", "     ", "     "]),
    ('/', ["     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "]),
    (':', ["     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "]),
    ('(', ["   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "]),
    (')', [" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "]),
    ('%', ["##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"]),
    ('_', ["     ", "     ", "     ", "     ", "     ", "     ", "#####"]),
    ('?', [" ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  "]),
];

fn glyph(c: char) -> &'static [&'static str; 7] {
    let c = c.to_ascii_uppercase();
    GLYPHS
        .iter()
        .find(|g| g.0 == c)
        .or_else(|| GLYPHS.iter().find(|g| g.0 == '?'))
        .map_or(&GLYPHS[0].1, |g| &g.1)
}

/// The lit pixels of `text` at font scale 1, as (x, y) offsets from its top-left corner.
pub(crate) fn pixels(text: &str) -> impl Iterator<Item = (i32, i32)> + '_ {
    text.chars().enumerate().flat_map(|(i, c)| {
        let g = glyph(c);
        (0..H).flat_map(move |y| {
            let row = g[y as usize].as_bytes();
            (0..W)
                .filter(move |&x| row.get(x as usize) == Some(&b'#'))
                .map(move |x| (i as i32 * (W + 1) + x, y))
        })
    })
}

/// Width of `text` at font scale 1, pixels.
pub(crate) fn width(text: &str) -> i32 {
    (text.chars().count() as i32 * (W + 1) - 1).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_glyph_is_five_by_seven() {
        for (c, rows) in GLYPHS {
            for r in rows {
                assert_eq!(r.len(), W as usize, "{c:?}");
            }
        }
    }

    #[test]
    fn text_lays_out_left_to_right() {
        assert_eq!(width("AB"), 11);
        let px: Vec<(i32, i32)> = pixels("-.").collect();
        // '-' lights row 3, columns 0..5; '.' starts at column 6.
        assert!(px.contains(&(0, 3)) && px.contains(&(4, 3)));
        assert!(px.contains(&(7, 5)) && px.iter().all(|&(x, y)| x < 11 && y < 7));
        // Lower case is upper case; unknown characters are '?'.
        assert_eq!(
            pixels("a").collect::<Vec<_>>(),
            pixels("A").collect::<Vec<_>>()
        );
        assert_eq!(
            pixels("~").collect::<Vec<_>>(),
            pixels("?").collect::<Vec<_>>()
        );
    }
}
