"""The company record: letterhead, logo and working week, edited by administrators."""
